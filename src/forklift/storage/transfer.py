"""Copy objects between any two URIs: local ↔ s3, s3 → s3 (server side), https → anywhere.

For the `forklift buckets` commands, acting for the user who runs them: local paths are not confined
to the server's file roots."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from forklift.config import Settings, load_settings
from forklift.storage.base import DEFAULT_WORKERS, ObjectStore, plan_prefix_download, run_parallel
from forklift.storage.errors import LocalFileError, StorageError
from forklift.storage.resolve import store_for
from forklift.storage.uri import Location, parse_uri


def copy_object(src_uri: str, dst_uri: str, settings: Settings | None = None) -> None:
    """Copy one object (or local file) to `dst_uri`, which names the destination object or file."""
    settings = settings or load_settings()
    _copy(store_for(src_uri, settings, as_user=True), store_for(dst_uri, settings, as_user=True),
          parse_uri(src_uri), parse_uri(dst_uri))


def copy_tree(src_prefix: str, dst_prefix: str, settings: Settings | None = None) -> list[tuple[str, str]]:
    """Copy every object under the "directory" `src_prefix` to the same relative keys under `dst_prefix`.

    Both are taken as directories (`s3://b/data` means `data/`, never `data2/`). Returns the
    (source, destination) URI pairs; copying nothing is an error, as in `aws s3 cp --recursive`
    it would be a silent surprise.
    """
    settings = settings or load_settings()
    src, dst = parse_uri(src_prefix).as_directory(), parse_uri(dst_prefix).as_directory()
    src_store, dst_store = store_for(src.uri, settings, as_user=True), store_for(dst.uri, settings, as_user=True)
    plan = plan_prefix_download(src, src_store.list(src.uri))
    if not plan:
        raise StorageError(f"no objects under {src.uri}")
    pairs = [(obj.uri, dst.with_key(dst.key + rel.as_posix())) for obj, rel in plan]
    run_parallel(lambda pair: _copy(src_store, dst_store, parse_uri(pair[0]), pair[1]), pairs,
                 settings.max_concurrent_downloads or DEFAULT_WORKERS)
    return [(src_uri, dst_loc.uri) for src_uri, dst_loc in pairs]


def _copy(src_store: ObjectStore, dst_store: ObjectStore, src: Location, dst: Location) -> None:
    if dst.is_local:
        try:
            src_store.download(src.uri, Path(dst.key))
        except OSError as exc:
            if not _about(exc, Path(dst.key)):
                raise
            raise LocalFileError(f"cannot write {dst.key}: {exc.strerror or exc}") from None
    elif src.is_local:
        try:
            with open(src.key, "rb"):  # what the user named is there and readable: say so now, by name
                pass
        except OSError as exc:
            raise LocalFileError(f"cannot read {src.key}: {exc.strerror or exc}") from None
        dst_store.upload(Path(src.key), dst.uri)
    elif src.scheme == dst.scheme:
        src_store.copy(src.uri, dst.uri)
    else:  # e.g. https → s3: no shared backend, so pass through a temporary file
        with tempfile.TemporaryDirectory(prefix="forklift-copy-") as tmp:
            staged = src_store.download(src.uri, Path(tmp) / "object")
            dst_store.upload(staged, dst.uri)


def _about(exc: OSError, path: Path) -> bool:
    """Whether `exc` is about `path`, its directory or a file beside it (a temporary one)."""
    names = [Path(os.fsdecode(n)) for n in (exc.filename, exc.filename2) if n is not None]
    return any(n == path or n.parent == path.parent or path.is_relative_to(n) for n in names)
