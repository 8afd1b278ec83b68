"""The embedded bucket store: `s3://<bucket>/<key>` is the file `$FORKLIFT_HOME/buckets/<bucket>/<key>`.

Used when no S3 endpoint is configured, so a single machine needs no object-storage server. A bucket
is a directory made by `make_bucket` (like S3, writing to a missing bucket fails rather than
inventing it), keys are files, and every write lands atomically.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from forklift.config import Settings
from forklift.storage.atomic import copy_file
from forklift.storage.base import BucketInfo, ObjectInfo, PrefixTransfers
from forklift.storage.errors import BucketAlreadyExists, InvalidURI, NoSuchBucket, NoSuchKey
from forklift.storage.filetree import FileTree, modified
from forklift.storage.uri import Location, parse_uri, validate_bucket_name


class EmbeddedBuckets(PrefixTransfers):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedBuckets:
        return cls(settings.home / "buckets")

    def __repr__(self) -> str:
        return f"EmbeddedBuckets({str(self.root)!r})"

    def _open(self, uri: str, *, need_key: bool) -> tuple[Location, FileTree]:
        loc = parse_uri(uri)
        if loc.scheme != "s3":
            raise InvalidURI(f"{uri}: the embedded bucket store only holds s3:// URIs")
        if need_key and (not loc.key or loc.key.endswith("/")):
            raise InvalidURI(f"{uri}: names a bucket or prefix, not an object key")
        bucket_dir = self.root / validate_bucket_name(loc.bucket)
        if not bucket_dir.is_dir():
            raise NoSuchBucket(loc.bucket)
        return loc, FileTree(bucket_dir, contained=True)

    # --- ObjectStore -------------------------------------------------------------------------------

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        loc, tree = self._open(prefix_uri, need_key=False)
        return [ObjectInfo(key, st.st_size, modified(st), loc.with_key(key).uri) for key, st in tree.list(loc.key)]

    def download(self, uri: str, dest_path: Path) -> Path:
        loc, tree = self._open(uri, need_key=True)
        if tree.stat(loc.key) is None:
            raise NoSuchKey(uri)
        dest_path = Path(dest_path)
        copy_file(tree.path_for(loc.key), dest_path)
        return dest_path

    def upload(self, src_path: Path, uri: str) -> None:
        loc, tree = self._open(uri, need_key=True)
        tree.write_file(loc.key, Path(src_path))

    def copy(self, src_uri: str, dst_uri: str) -> None:
        src, src_tree = self._open(src_uri, need_key=True)
        if src_tree.stat(src.key) is None:
            raise NoSuchKey(src_uri)
        dst, dst_tree = self._open(dst_uri, need_key=True)
        dst_tree.write_file(dst.key, src_tree.path_for(src.key))

    def delete(self, uri: str) -> None:
        loc, tree = self._open(uri, need_key=True)
        tree.delete(loc.key)

    def exists(self, uri: str) -> bool:
        try:
            loc, tree = self._open(uri, need_key=True)
        except NoSuchBucket:
            return False
        return tree.stat(loc.key) is not None

    def open_read(self, uri: str) -> BinaryIO:
        loc, tree = self._open(uri, need_key=True)
        if tree.stat(loc.key) is None:
            raise NoSuchKey(uri)
        return tree.open(loc.key)

    # --- BucketStore -------------------------------------------------------------------------------

    def list_buckets(self) -> list[BucketInfo]:
        if not self.root.is_dir():
            return []
        buckets = []
        for entry in sorted(self.root.iterdir()):
            # Only what could be a bucket: not the S3 API's state (`.forklift-s3`) nor anything else hidden.
            if entry.is_dir() and not entry.is_symlink() and entry.name[:1].isalnum():
                created = datetime.fromtimestamp(entry.stat().st_mtime, tz=UTC)
                buckets.append(BucketInfo(entry.name, created))
        return buckets

    def make_bucket(self, name: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            (self.root / validate_bucket_name(name)).mkdir()
        except FileExistsError:
            raise BucketAlreadyExists(name) from None
