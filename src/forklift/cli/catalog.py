"""`forklift catalog …`: image URIs of SageMaker's built-in algorithm and framework images (offline)."""

from __future__ import annotations

import json
import warnings

import click
from rich.console import Console
from rich.table import Table

from forklift import catalog as lib


def _run(func, *args, **kwargs):
    """Call ``func``; CatalogErrors become one error line, warnings go to stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", lib.CatalogWarning)
        try:
            result = func(*args, **kwargs)
        except lib.CatalogError as exc:
            raise click.ClickException(str(exc)) from None
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    return result


@click.group()
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
@click.option("--mirror", metavar="HOST", help="Rewrite the URI to a mirror registry HOST[:PORT], keeping repository and tag.")
def image_uri_command(algorithm: str, region: str, version: str | None, scope: str | None,
                      processor: str | None, py_version: str | None, mirror: str | None) -> None:
    """Print the image URI of ALGORITHM in a region."""
    uri = _run(lib.image_uri, algorithm, region, version=version, scope=scope, processor=processor,
               py_version=py_version, mirror=mirror)
    click.echo(uri)


def _short(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f", … (+{len(items) - limit})" if len(items) > limit else "")


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=160)  # pipes and files get whole cells


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title)
    for i, name in enumerate(columns):
        table.add_column(name, no_wrap=i == 0, overflow="fold",
                         justify="right" if name in ("Versions", "Regions") else "left")
    return table


@catalog.command("list")
@click.argument("algorithm", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(algorithm: str | None, as_json: bool) -> None:
    """List the algorithms, or the images of ALGORITHM."""
    if algorithm is None:
        infos = [_run(lib.describe, name) for name in lib.list_algorithms()]
        if as_json:
            click.echo(json.dumps({i["algorithm"]: {k: v for k, v in i.items() if k not in ("algorithm", "images")}
                                   for i in infos}, indent=2))
            return
        source = lib.source()
        table = _table(f"Algorithms and frameworks ({source['package']} {source['version']} data)",
                       "Algorithm", "Kind", "Scopes", "Versions", "Newest", "Processors")
        for info in infos:
            table.add_row(info["algorithm"], "algorithm" if info["builtin"] else "framework", ", ".join(info["scopes"]),
                          str(len(info["versions"])), info["versions"][-1] if info["versions"] else "",
                          ", ".join(info["processors"]) or "any")
        _console().print(table)
        return
    info = _run(lib.describe, algorithm)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    table = _table(f"{algorithm}: {len(info['versions'])} versions, {len(info['regions'])} regions",
                   "Version", "Aliases", "Scopes", "Processors", "Python", "Repository", "Regions")
    for row in info["images"]:
        table.add_row(row["version"] or "(none)", ", ".join(row["aliases"]), ", ".join(row["scopes"]),
                      ", ".join(row["processors"]) or "any", ", ".join(row["py_versions"]) or "-",
                      ", ".join(row["repositories"]), str(len(row["regions"])))
    _console().print(table)
    click.echo(f"Regions: {_short(info['regions'])}")
    if info["builtin"]:
        click.echo("Built-in algorithm: tag ':1' by default; ':latest' only with --version latest.")
