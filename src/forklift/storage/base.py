"""The `ObjectStore` protocol every backend implements, and the prefix logic they all share.

Every method takes URIs (strings), so a caller holding `s3://b/k` never needs to know whether the
bytes live in the embedded store, behind an S3 endpoint or on the local disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, TypeVar, runtime_checkable

from forklift.cancel import NEVER, Cancel
from forklift.storage.atomic import atomic_path
from forklift.storage.errors import StorageError
from forklift.storage.uri import Location, parse_uri, relative_path

T = TypeVar("T")
DEFAULT_WORKERS = 8
CHUNK = 1 << 20  # how much is copied between two looks at a stop


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # the key inside its bucket; for file:// the absolute path
    size: int
    last_modified: datetime
    uri: str = ""  # the object's full URI, ready to hand to download()/open_read()


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime | None


@runtime_checkable
class ObjectStore(Protocol):
    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        """Every object whose key starts with the prefix (recursive), sorted by key."""

    def download(self, uri: str, dest_path: Path) -> Path: ...

    def download_prefix(self, prefix_uri: str, dest_dir: Path) -> list[Path]: ...

    def upload(self, src_path: Path, uri: str) -> None: ...

    def upload_dir(self, src_dir: Path, prefix_uri: str) -> list[str]: ...

    def copy(self, src_uri: str, dst_uri: str) -> None:
        """Copy one object to another URI of the same store."""

    def delete(self, uri: str) -> None:
        """Remove one object; like S3, removing a missing object is not an error."""

    def exists(self, uri: str) -> bool: ...

    def open_read(self, uri: str) -> BinaryIO:
        """A stream of the object's bytes; use it as a context manager."""


@runtime_checkable
class BucketStore(ObjectStore, Protocol):
    """A store that owns buckets (the embedded store, an S3 endpoint): what `forklift buckets` drives."""

    def list_buckets(self) -> list[BucketInfo]: ...

    def make_bucket(self, name: str) -> None: ...


class PrefixTransfers:
    """download_prefix and upload_dir for any store that has list/download/upload."""

    workers: int = DEFAULT_WORKERS

    def download_prefix(self, prefix_uri: str, dest_dir: Path) -> list[Path]:
        prefix = parse_uri(prefix_uri)
        plan = plan_prefix_download(prefix, self.list(prefix_uri))  # type: ignore[attr-defined]
        return download_planned(self, plan, Path(dest_dir), self.workers)

    def upload_dir(self, src_dir: Path, prefix_uri: str) -> list[str]:
        src_dir = Path(src_dir)
        if not src_dir.is_dir():
            raise StorageError(f"{src_dir} is not a directory")
        base = parse_uri(prefix_uri).as_directory()
        jobs = [(path, base.with_key(base.key + rel).uri) for path, rel in walk_local_files(src_dir)]
        run_parallel(lambda job: self.upload(*job), jobs, self.workers)  # type: ignore[attr-defined]
        return [uri for _, uri in jobs]


def relative_key(prefix: str, key: str) -> str:
    """Where an object found under `prefix` lands below the destination directory.

    `data/` + `data/a/b.csv` → `a/b.csv`; a prefix equal to the key → the key's base name;
    `data/train` + `data/train/x` → `x`; a prefix that stops mid-name (`data/tr` + `data/train.csv`)
    keeps the whole name `train.csv` rather than the meaningless tail `ain.csv`.
    """
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    rest = key[len(prefix):]
    if not prefix or prefix.endswith("/"):
        return rest
    if rest.startswith("/"):
        return rest[1:]
    parent = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return key[len(parent):]


def plan_prefix_download(prefix: Location, objects: Iterable[ObjectInfo]) -> list[tuple[ObjectInfo, PurePosixPath]]:
    """Pair each object with its path relative to the destination; refuse escapes and collisions."""
    plan: list[tuple[ObjectInfo, PurePosixPath]] = []
    files: dict[PurePosixPath, str] = {}
    for obj in objects:
        if obj.key.endswith("/"):  # a zero-byte "folder" marker made by consoles, not data
            continue
        rel = relative_path(relative_key(prefix.key, obj.key), source=obj.uri or obj.key)
        if rel in files:
            raise StorageError(f"{obj.uri} and {files[rel]} would both be written to {rel}")
        files[rel] = obj.uri
        plan.append((obj, rel))
    for rel, uri in files.items():
        for parent in rel.parents:
            if parent in files:
                raise StorageError(f"{uri} needs {parent} to be a directory, but {files[parent]} is a file there")
    return plan


def download_planned(store: ObjectStore, plan: list[tuple[ObjectInfo, PurePosixPath]], dest_dir: Path,
                     workers: int = DEFAULT_WORKERS, cancel: Cancel = NEVER) -> list[Path]:
    cancel.raise_if_set()
    dest_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(obj.uri, dest_dir.joinpath(*rel.parts)) for obj, rel in plan]
    if cancel is NEVER:
        run_parallel(lambda job: store.download(*job), jobs, workers)
    else:  # a stop also ends the objects being copied, at their next chunk
        run_parallel(lambda job: download_stoppable(store, *job, cancel), jobs, workers, cancel)
    return [path for _, path in jobs]


@runtime_checkable
class StoppableDownloads(Protocol):
    """A store whose own download looks at a stop between chunks, keeping its retries and checks (S3:
    a body cut short is an error there, where a plain stream of it can end early without one)."""

    def download_stopping(self, uri: str, dest_path: Path, cancel: Cancel) -> Path: ...


def download_stoppable(store: ObjectStore, uri: str, dest_path: Path, cancel: Cancel) -> Path:
    """`store.download(uri, dest_path)` a chunk at a time, looking at `cancel` between chunks: a stop
    raises `Cancelled` and leaves nothing at `dest_path`. A copy given up on its thread (`Cancel.call`)
    otherwise went on writing long after its caller had moved on. One stream per object, where
    `download` may fetch ranges in parallel: the price of stopping part-way."""
    cancel.raise_if_set()
    if isinstance(store, StoppableDownloads):
        return store.download_stopping(uri, dest_path, cancel)
    with store.open_read(uri) as source:
        cancel.raise_if_set()  # before anything is made: the answer may come long after a stop
        with atomic_path(dest_path) as tmp, open(tmp, "wb") as dest:
            while chunk := source.read(CHUNK):
                cancel.raise_if_set()
                dest.write(chunk)
            cancel.raise_if_set()
    return dest_path


def walk_local_files(root: Path) -> list[tuple[Path, str]]:
    """(path, "/"-joined path relative to root) of every file below root, sorted by that relative key;
    symlinked directories are not entered."""
    found: list[tuple[Path, str]] = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file():  # skips sockets, fifos and dangling links
                found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda item: item[1])


def run_parallel(fn: Callable[[T], object], items: list[T], workers: int, cancel: Cancel = NEVER) -> None:
    """Run fn over items on a few threads (transfers are I/O bound); the first failure is raised, and
    the items not begun yet are dropped. A stop (`cancel`) begins no further item (`Cancelled`)."""
    def one(item: T) -> object:
        cancel.raise_if_set()
        return fn(item)

    if len(items) <= 1 or workers <= 1:
        for item in items:
            one(item)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="storage") as pool:
        futures = [pool.submit(one, item) for item in items]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
