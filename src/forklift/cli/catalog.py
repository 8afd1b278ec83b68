"""`forklift catalog …`: image URIs of SageMaker's built-in algorithm and framework images (offline)."""

from __future__ import annotations

import json
import warnings

import click

from forklift import catalog as lib
from forklift.cli.groups import Group
from forklift.cli.output import output_option, print_table


def _run(func, *args, **kwargs):
    """Call ``func``; its warnings go to stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", lib.CatalogWarning)
        result = func(*args, **kwargs)
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    return result


@click.group(cls=Group)
def catalog() -> None:
    """Images of SageMaker's built-in algorithms and frameworks (no network needed)."""


@catalog.command("image-uri")
@click.argument("algorithm")
@click.option("-r", "--region", required=True, help="AWS region, e.g. us-east-1, cn-north-1, us-gov-west-1.")
@click.option("--version", "version", metavar="V",
              help="Algorithm or framework version (default: ':1' for built-in algorithms; 'latest' on request).")
@click.option("--scope", metavar="SCOPE",
              help="Image use: training or inference (some images: processing, eia, inference_graviton, …).")
@click.option("--processor", metavar="PROC", help="cpu or gpu (some images: inf, inf2, trn, neuronx).")
@click.option("--py-version", metavar="pyXY", help="Python version of framework images, e.g. py310.")
@click.option("--mirror", metavar="HOST",
              help="Rewrite the URI to a mirror registry HOST[:PORT], keeping repository and tag.")
def image_uri_command(algorithm: str, region: str, version: str | None, scope: str | None,
                      processor: str | None, py_version: str | None, mirror: str | None) -> None:
    """Print the image URI of ALGORITHM in a region."""
    uri = _run(lib.image_uri, algorithm, region, version=version, scope=scope, processor=processor,
               py_version=py_version, mirror=mirror)
    click.echo(uri)


def _short(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f", … (+{len(items) - limit})" if len(items) > limit else "")




@catalog.command("list")
@click.argument("algorithm", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table (as -o json).")
@output_option
def list_command(algorithm: str | None, as_json: bool, output: str) -> None:
    """List the algorithms, or the images of ALGORITHM."""
    as_json = as_json or output == "json"
    if algorithm is None:
        infos = [_run(lib.describe, name) for name in lib.list_algorithms()]
        if as_json:
            click.echo(json.dumps({i["algorithm"]: {k: v for k, v in i.items() if k not in ("algorithm", "images")}
                                   for i in infos}, indent=2))
            return
        source = lib.source()
        click.echo(f"Algorithms and frameworks ({source['package']} {source['version']} data)")
        print_table(("ALGORITHM", "KIND", "SCOPES", "VERSIONS", "NEWEST", "PROCESSORS"),
                    [(info["algorithm"], "algorithm" if info["builtin"] else "framework", ",".join(info["scopes"]),
                      str(len(info["versions"])), info["versions"][-1] if info["versions"] else "",
                      ",".join(info["processors"]) or "any") for info in infos])
        return
    info = _run(lib.describe, algorithm)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{algorithm}: {len(info['versions'])} versions, {len(info['regions'])} regions")
    print_table(("VERSION", "ALIASES", "SCOPES", "PROCESSORS", "PYTHON", "REPOSITORY", "REGIONS"),
                [(row["version"] or "(none)", ",".join(row["aliases"]) or "-", ",".join(row["scopes"]),
                  ",".join(row["processors"]) or "any", ",".join(row["py_versions"]) or "-",
                  ",".join(row["repositories"]), str(len(row["regions"]))) for row in info["images"]])
    click.echo(f"Regions: {_short(info['regions'])}")
    if info["builtin"]:
        click.echo("Built-in algorithm: tag ':1' by default; ':latest' only with --version latest.")
