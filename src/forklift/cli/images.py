"""`forklift images …`: pull, push, build, ls, inspect, rm, prune."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import datetime
from pathlib import Path

import click

from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option, print_table
from forklift.config import load_settings
from forklift.reference import parse

# The registry client, the progress bars and the image records load in the commands that use them:
# `forklift images ls` answers without httpx, rich or SQLAlchemy.


def keychain_from_options(registry: str, username: str | None, password_stdin: bool):
    """--username/--password-stdin for `registry` first, then docker's config.json, ECR, anonymous."""
    from forklift.credentials import Credentials
    from forklift.credentials.chain import default_keychain

    explicit = None
    if username or password_stdin:
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
        if password_stdin and not password:
            raise click.UsageError("--password-stdin given but standard input held no password")
        if password and not username:
            raise click.UsageError("--password-stdin needs --username")
        explicit = Credentials(username=username, password=password)
    return default_keychain(load_settings(), explicit=explicit, explicit_registry=registry)


def credential_options(func):
    func = click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")(func)
    func = click.option("-u", "--username", help="Registry user name.")(func)
    return func


def check_platform(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--platform must be os/arch[/variant]; anything else is a usage error naming the option."""
    if value is not None:
        from forklift.registry.manifest import parse_platform

        try:
            parse_platform(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def check_key_values(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """A repeatable KEY=VALUE option: an item without `=` is a usage error."""
    for item in value:
        if "=" not in item:
            raise click.BadParameter(f"'{item}': expected KEY=VALUE")
    return value


IMAGE_COLUMNS = ("reference", "digest", "index_digest", "media_type", "platform", "size", "created_at")


@click.group(cls=Group)
def images() -> None:
    """Pull, build, push and inspect images in forklift's local store."""


@images.command("pull")
@click.argument("reference")
@credential_options
@click.option("--platform", callback=check_platform,
              help="os/arch[/variant] to pick from a multi-platform image (default linux/amd64).")
def pull_command(reference: str, username: str | None, password_stdin: bool, platform: str | None) -> None:
    """Pull REFERENCE into the local store and print its digest."""
    import asyncio

    from forklift.cli.progress import transfer_progress
    from forklift.images.imagestore import ImageStore
    from forklift.images.pull import pull
    from forklift.registry.manifest import parse_platform

    ref = parse(reference)
    store = ImageStore(load_settings())
    keychain = keychain_from_options(ref.registry, username, password_stdin)
    with transfer_progress() as progress:
        result = asyncio.run(pull(ref, store, keychain=keychain,
                                  platform=parse_platform(platform) if platform else None, progress=progress))
    click.echo(f"{result.image.reference}")
    click.echo(f"Digest: {result.image.digest}")


@images.command("push")
@click.argument("source")
@click.argument("reference")
@credential_options
@click.option("--chunk-size", type=int, help="Upload blobs in chunks of this many bytes (default: one request).")
def push_command(source: str, reference: str, username: str | None, password_stdin: bool,
                 chunk_size: int | None) -> None:
    """Push SOURCE (an image in the store, or oci:PATH[:TAG]) to REFERENCE."""
    import asyncio

    from forklift.cli.progress import transfer_progress
    from forklift.images.imagestore import ImageStore
    from forklift.images.layout import parse_layout_source
    from forklift.images.push import push, source_from_layout, source_from_store

    ref = parse(reference)
    store = ImageStore(load_settings())
    if source.startswith("oci:"):
        push_source = source_from_layout(*parse_layout_source(source))
    else:
        push_source = source_from_store(store, source)
    keychain = keychain_from_options(ref.registry, username, password_stdin)
    with transfer_progress() as progress:
        result = asyncio.run(push(push_source, ref, store, keychain=keychain, progress=progress, chunk_size=chunk_size))
    click.echo(f"{ref}")
    click.echo(f"Digest: {result.digest}")


def _command_list(text: str | None, option: str) -> list[str] | None:
    """A JSON array (`["python3","-u"]`) or a shell-style string."""
    if text is None:
        return None
    if text.strip().startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"not a JSON array: {exc}", param_hint=option) from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise click.BadParameter("must be a JSON array of strings or a shell-style command", param_hint=option)
        return value
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        raise click.BadParameter(f"not a shell-style command: {exc}", param_hint=option) from None


@images.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-t", "--tag", required=True, help="Reference to give the image, e.g. localhost:5443/team/train:1.0.")
@click.option("--base", help="Base image (pulled if not in the store); default: build from scratch.")
@click.option("--dest", default="/", show_default=True, help="Where DIRECTORY's contents land in the image.")
@click.option("--entrypoint", help='Entrypoint, JSON array or shell-style string.')
@click.option("--cmd", help="Default arguments, JSON array or shell-style string.")
@click.option("--env", multiple=True, callback=check_key_values, help="KEY=VALUE (repeatable).")
@click.option("--workdir", help="Working directory.")
@click.option("--label", multiple=True, callback=check_key_values, help="KEY=VALUE (repeatable).")
@click.option("--push", "push_after", is_flag=True, help="Push the image to its registry after building.")
@credential_options
@click.option("--platform", callback=check_platform, help="Platform of the base image to use.")
def build_command(directory: Path, tag: str, base: str | None, dest: str, entrypoint: str | None, cmd: str | None,
                  env: tuple[str, ...], workdir: str | None, label: tuple[str, ...], push_after: bool,
                  username: str | None, password_stdin: bool, platform: str | None) -> None:
    """Build an image from DIRECTORY (a rootfs, or a folder layered on --base)."""
    import asyncio

    from forklift.cli.progress import transfer_progress
    from forklift.images.build import BuildOptions, build
    from forklift.images.imagestore import ImageNotFound, ImageStore
    from forklift.images.pull import pull
    from forklift.images.push import push, source_from_store
    from forklift.registry.manifest import parse_platform

    store = ImageStore(load_settings())
    target = parse(tag)
    keychain = keychain_from_options(target.registry, username, password_stdin)
    base_image = None
    if base:
        try:
            base_image = store.get(base)
        except ImageNotFound:
            base_ref = parse(base)
            with transfer_progress() as progress:
                base_image = asyncio.run(pull(base_ref, store, keychain=keychain, progress=progress,
                                              platform=parse_platform(platform) if platform else None)).image
    labels = dict(item.split("=", 1) for item in label)
    options = BuildOptions(entrypoint=_command_list(entrypoint, "'--entrypoint'"), cmd=_command_list(cmd, "'--cmd'"),
                           env=env, workdir=workdir, labels=labels, dest=dest)
    image = build(store, [directory], tag=tag, base=base_image, options=options)
    click.echo(f"{image.reference}")
    click.echo(f"Digest: {image.digest}")
    if push_after:
        with transfer_progress() as progress:
            result = asyncio.run(push(source_from_store(store, image.reference), target, store, keychain=keychain,
                                      progress=progress))
        click.echo(f"Pushed: {target} {result.digest}")


@images.command("ls")
@output_option
def ls_command(output: str) -> None:
    """List images in the local store (those jobs and endpoints pulled too: an image pulled by digest,
    as endpoints pin theirs, has no tag)."""
    from forklift import quickread

    settings = load_settings()
    records = quickread.select(settings, "images", IMAGE_COLUMNS, order_by="reference")
    if records is None:
        from forklift.images.imagestore import ImageStore

        records = [{column: getattr(r, column) for column in IMAGE_COLUMNS} for r in ImageStore(settings).list()]
    if output == "json":
        emit_json({"Images": [{"Reference": r["reference"], "Digest": r["digest"], "IndexDigest": r["index_digest"],
                               "MediaType": r["media_type"], "Platform": r["platform"], "Size": r["size"],
                               "Created": datetime.fromtimestamp(r["created_at"]).astimezone()} for r in records]})
        return
    rows = []
    for record in records:
        ref = parse(record["reference"])
        rows.append((ref.familiar_name(), ref.tag or "(by digest)", record["digest"].removeprefix("sha256:")[:12],
                     record["platform"] or "", _human(record["size"]),
                     datetime.fromtimestamp(record["created_at"]).strftime("%Y-%m-%d %H:%M")))
    print_table(("REPOSITORY", "TAG", "DIGEST", "PLATFORM", "SIZE", "CREATED"), rows)


@images.command("inspect")
@click.argument("name")
def inspect_command(name: str) -> None:
    """Show an image as JSON: digest, media type, platform, config, layers with sizes."""
    from forklift.images.imagestore import ImageStore

    store = ImageStore(load_settings())
    image = store.get(name)
    out = {
        "Reference": image.reference,
        "Digest": image.digest,
        "IndexDigest": image.record.index_digest,
        "MediaType": image.manifest.media_type,
        "Platform": image.record.platform,
        "Size": image.record.size,
        "Config": store.config(image),
        "Layers": [{"Digest": d.digest, "MediaType": d.media_type, "Size": d.size} for d in image.layers],
    }
    click.echo(json.dumps(out, indent=2))


@images.command("rm")
@click.argument("names", nargs=-1, required=True)
def rm_command(names: tuple[str, ...]) -> None:
    """Remove image records (blobs go with `forklift images prune`)."""
    from forklift.images.imagestore import ImageStore

    store = ImageStore(load_settings())
    for name in names:
        record = store.remove(name)
        click.echo(f"Untagged: {record.reference}")


@images.command("prune")
def prune_command() -> None:
    """Delete blobs that no image refers to."""
    from forklift.images.imagestore import ImageStore

    removed, freed = ImageStore(load_settings()).prune()
    click.echo(f"Deleted {removed} blobs, freed {_human(freed)}")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
