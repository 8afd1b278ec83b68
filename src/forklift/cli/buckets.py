"""`forklift buckets …`: cp, ls, rm and mb for s3:// URIs, in the style of `aws s3`.

`s3://` goes to the configured S3 endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or config.toml
`s3_endpoint_url`), else to the embedded store under $FORKLIFT_HOME/buckets.
"""

from __future__ import annotations

import os
from datetime import datetime

import click

from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option
from forklift.config import load_settings
from forklift.storage import Location, bucket_store, copy_object, copy_tree, parse_uri, store_for


def s3_location(uri: str) -> Location:
    loc = parse_uri(uri)
    if loc.scheme != "s3":
        raise click.UsageError(f"expected an s3:// URI, got {uri!r}")
    return loc


@click.group(cls=Group)
def buckets() -> None:
    """Copy, list and remove objects in s3:// buckets (an S3 endpoint, or forklift's embedded store)."""


@buckets.command("cp")
@click.argument("src")
@click.argument("dst")
@click.option("-r", "--recursive", is_flag=True, help="Copy every object under SRC (a directory or prefix).")
def cp_command(src: str, dst: str, recursive: bool) -> None:
    """Copy SRC to DST: local → s3://, s3:// → local, or s3:// → s3://."""
    source, dest = parse_uri(src), parse_uri(dst)
    if source.is_local and dest.is_local:
        raise click.UsageError("one of SRC and DST must be an s3:// URI (use cp(1) for local copies)")
    settings = load_settings()
    verb = "upload" if source.is_local else "download" if dest.is_local else "copy"
    if recursive:
        for src_uri, dst_uri in copy_tree(source.uri, dest.uri, settings):
            click.echo(f"{verb}: {_shown(src_uri)} to {_shown(dst_uri)}")
        return
    if source.is_local and os.path.isdir(source.key):
        raise click.UsageError(f"{src} is a directory: add --recursive to copy its contents")
    if not source.is_local and (not source.key or source.key.endswith("/")):
        raise click.UsageError(f"{src} names a bucket or prefix: add --recursive to copy the objects under it")
    target = _object_destination(source, dest)
    copy_object(source.uri, target.uri, settings)
    click.echo(f"{verb}: {_shown(source.uri)} to {_shown(target.uri)}")


def _object_destination(source: Location, dest: Location) -> Location:
    """Like cp(1): a destination that is a directory (or ends in "/") receives the source's base name."""
    into_directory = dest.key.endswith("/") or not dest.key or (dest.is_local and os.path.isdir(dest.key))
    if not into_directory:
        return dest
    return dest.with_key(dest.key.rstrip("/") + "/" + source.basename if dest.key else source.basename)


def _shown(uri: str) -> str:
    return uri.removeprefix("file://")


@buckets.command("ls")
@click.argument("uri", required=False)
@click.option("-r", "--recursive", is_flag=True, help="List every object below the prefix, not one level.")
@output_option
def ls_command(uri: str | None, recursive: bool, output: str) -> None:
    """List buckets, or the objects in s3://BUCKET[/PREFIX] (`-o json`: S3's ListBuckets and
    ListObjectsV2 shapes)."""
    if uri is None:
        found = bucket_store(load_settings()).list_buckets()
        if output == "json":
            emit_json({"Buckets": [{"Name": b.name, "CreationDate": b.created} for b in found]})
            return
        for bucket in found:
            click.echo(f"{_when(bucket.created)} {bucket.name}")
        return
    loc = s3_location(uri)
    objects = store_for(loc.uri, load_settings(), as_user=True).list(loc.uri)
    base = loc.key[: loc.key.rfind("/") + 1]  # names are shown relative to the prefix's "directory"
    entries: list[tuple[str, object]] = []  # ("prefix", "dir/") or ("object", obj), in key order
    folded: set[str] = set()
    for obj in objects:
        rest = obj.key[len(loc.key):]
        if not recursive and "/" in rest:  # one level, as S3's delimiter listing: fold into "PRE dir/"
            common = obj.key[: len(loc.key) + rest.index("/") + 1]
            if common not in folded:
                folded.add(common)
                entries.append(("prefix", common))
            continue
        entries.append(("object", obj))
    if output == "json":
        emit_json({"Name": loc.bucket, "Prefix": loc.key,
                   "Contents": [{"Key": o.key, "Size": o.size, "LastModified": o.last_modified}
                                for kind, o in entries if kind == "object"],
                   "CommonPrefixes": [{"Prefix": p} for kind, p in entries if kind == "prefix"]})
        return
    for kind, entry in entries:
        if kind == "prefix":
            click.echo(f"{'PRE':>30} {entry[len(base):]}")
        else:
            name = entry.key if recursive else entry.key[len(base):]
            click.echo(f"{_when(entry.last_modified)} {entry.size:>10} {name}")


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else " " * 19


@buckets.command("rm")
@click.argument("uri")
@click.option("-r", "--recursive", is_flag=True, help="Remove every object under the prefix URI/.")
def rm_command(uri: str, recursive: bool) -> None:
    """Remove an object, or with --recursive every object under a prefix."""
    loc = s3_location(uri)
    store = store_for(loc.uri, load_settings(), as_user=True)
    if recursive:
        prefix = loc.as_directory()
        objects = store.list(prefix.uri)
        if not objects:
            raise click.ClickException(f"no objects under {prefix.uri}")
        for obj in objects:
            store.delete(obj.uri)
            click.echo(f"delete: {obj.uri}")
        return
    if not loc.key or loc.key.endswith("/"):
        raise click.UsageError(f"{uri} names a bucket or prefix: add --recursive to remove the objects under it")
    if not store.exists(loc.uri):
        raise click.ClickException(f"no such object: {loc.uri}")
    store.delete(loc.uri)
    click.echo(f"delete: {loc.uri}")


@buckets.command("mb")
@click.argument("uri")
def mb_command(uri: str) -> None:
    """Make the bucket s3://BUCKET."""
    loc = s3_location(uri)
    if loc.key.strip("/"):
        raise click.UsageError(f"{uri}: give only a bucket, s3://BUCKET")
    bucket_store(load_settings()).make_bucket(loc.bucket)
    click.echo(f"make_bucket: {loc.bucket}")
