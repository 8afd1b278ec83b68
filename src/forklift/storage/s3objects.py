"""The embedded bucket store as S3 sees it: objects with their metadata, written atomically.

The files stay where `forklift buckets` keeps them (`$FORKLIFT_HOME/buckets/<bucket>/<key>`); what S3
adds to a file (ETag, Content-Type and the other stored headers, `x-amz-meta-*`, checksums) is one JSON
extended attribute (`user.forklift.s3`) set on the temporary file before it is renamed into place, so
an object and its metadata appear together or not at all. A file without the attribute (copied in by
`forklift buckets cp`, or on a filesystem without user xattrs), or whose size and mtime no longer match
what the attribute recorded (rewritten in place), gets defaults: `binary/octet-stream` and an ETag
derived from its size and mtime.

What a tree of files cannot hold is refused with `UnstorableKey`: a key ending in `/` (a folder
marker), a key with an empty, `.` or `..` component, a key with a component longer than a file name
(255 bytes), and a key that is both an object and a prefix of another (`a` and `a/b`). Names starting
with `.forklift-tmp-` are transfers in progress, never objects.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from forklift.atomicfile import TEMP_PREFIX
from forklift.storage.atomic import FILE_MODE
from forklift.storage.errors import StorageError, UnsafeKey
from forklift.storage.filetree import FileTree
from forklift.storage.s3listing import list_page
from forklift.storage.uri import key_parts, validate_bucket_name

XATTR = "user.forklift.s3"
MAX_KEY_BYTES = 1024
MAX_NAME_BYTES = 255  # a file name on Linux filesystems (NAME_MAX): one component of a key
# What S3 keeps of a PUT's headers and returns on GET/HEAD (besides x-amz-meta-*).
STORED_HEADERS = ("content-type", "content-encoding", "content-language", "content-disposition", "cache-control",
                  "expires")
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
STATE_DIR = ".forklift-s3"  # beside the buckets; never a bucket, since bucket names start with a letter or digit


class UnstorableKey(StorageError):
    """A key the file layout of the embedded store cannot hold (the message says why)."""


class BucketNotEmpty(StorageError):
    pass


@dataclass
class ObjectMeta:
    """What S3 returns about an object besides its bytes."""

    etag: str  # without quotes
    size: int
    modified: datetime
    headers: dict[str, str] = field(default_factory=dict)  # STORED_HEADERS that were given
    user: dict[str, str] = field(default_factory=dict)  # x-amz-meta-<name> -> value
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm (crc32, sha256, …) -> base64
    parts: int = 0  # a multipart upload's part count, else 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type") or DEFAULT_CONTENT_TYPE

    def record(self, st: os.stat_result) -> bytes:
        return json.dumps({"etag": self.etag, "headers": self.headers, "user": self.user,
                           "checksums": self.checksums, "parts": self.parts,
                           "size": st.st_size, "mtime_ns": st.st_mtime_ns}).encode()


def check_key(key: str) -> tuple[str, ...]:
    """The key's path components, or UnstorableKey naming why the embedded store cannot hold it."""
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise UnstorableKey(f"the key is longer than {MAX_KEY_BYTES} bytes")
    if key.endswith("/"):
        raise UnstorableKey(f"key {key!r} ends in '/': the embedded bucket store keeps objects as files and "
                            "cannot hold folder markers; upload the objects under that prefix instead")
    try:
        parts = key_parts(key)
    except UnsafeKey as exc:
        raise UnstorableKey(str(exc)) from None
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in parts):
        raise UnstorableKey(f"key {key[:64]!r}… has a '/'-separated component longer than {MAX_NAME_BYTES} bytes, the "
                            "longest file name the embedded bucket store can keep: split it with '/'")
    if any(part.startswith(TEMP_PREFIX) for part in parts):
        raise UnstorableKey(f"key {key!r} has a component starting with {TEMP_PREFIX!r}, the embedded store's "
                            "prefix for transfers in progress")
    return parts


def _default_etag(st: os.stat_result) -> str:
    return hashlib.md5(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode(), usedforsecurity=False).hexdigest()


def read_meta(path: Path | str | int, st: os.stat_result) -> ObjectMeta:
    """The metadata of the file at `path` (or open as fd `path`) whose stat is `st`."""
    modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
    try:
        raw = (os.getxattr(path, XATTR) if isinstance(path, int)
               else os.getxattr(path, XATTR, follow_symlinks=False))
        record: dict[str, Any] = json.loads(raw)
        if record.get("size") != st.st_size or record.get("mtime_ns") != st.st_mtime_ns:
            raise ValueError("the file changed since its metadata was written")
        return ObjectMeta(str(record["etag"]), st.st_size, modified, dict(record.get("headers") or {}),
                          dict(record.get("user") or {}), dict(record.get("checksums") or {}),
                          int(record.get("parts") or 0))
    except (OSError, ValueError, KeyError, TypeError):
        return ObjectMeta(_default_etag(st), st.st_size, modified)


def _write_meta(fd: int, meta: ObjectMeta) -> None:
    st = os.fstat(fd)
    try:
        os.setxattr(fd, XATTR, meta.record(st))
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.E2BIG, errno.ENOSPC):
            raise
        # No user xattrs here (or metadata too big for them): the object keeps default metadata.


@dataclass
class Pending:
    """An object being written: its temporary file, renamed over `dest` by `S3Objects.commit`."""

    file: BinaryIO
    tmp: Path
    dest: Path
    key: str


class S3Objects:
    """The buckets under `root` (EmbeddedBuckets' root), with S3's view of their files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    # --- buckets -----------------------------------------------------------------------------------

    def bucket_dir(self, bucket: str) -> Path | None:
        """The bucket's directory when the bucket exists, else None (also for a name S3 would refuse)."""
        try:
            validate_bucket_name(bucket)
        except StorageError:
            return None
        path = self.root / bucket
        try:
            st = os.lstat(path)
        except OSError:
            return None
        return path if stat.S_ISDIR(st.st_mode) else None

    def bucket_created(self, bucket: str) -> datetime:
        return datetime.fromtimestamp((self.root / bucket).stat().st_mtime, tz=UTC)

    def delete_bucket(self, bucket: str) -> None:
        path = self.root / bucket
        try:
            path.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                # Directories left empty by a crash are no objects: the bucket is empty when no file remains.
                if list_page(path, max_keys=1).entries:
                    raise BucketNotEmpty(bucket) from None
                shutil.rmtree(path)
                return
            raise

    # --- objects -----------------------------------------------------------------------------------

    def tree(self, bucket_dir: Path) -> FileTree:
        return FileTree(bucket_dir, contained=True)

    def head(self, bucket_dir: Path, key: str) -> ObjectMeta | None:
        check_key(key)
        path = self.tree(bucket_dir).path_for(key)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return read_meta(path, st)

    def open(self, bucket_dir: Path, key: str) -> tuple[BinaryIO, ObjectMeta] | None:
        """The object's file opened for reading, with the metadata of exactly that file."""
        check_key(key)
        path = self.tree(bucket_dir).path_for(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink in a bucket is no object
                return None
            raise
        file = os.fdopen(fd, "rb")
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            file.close()
            return None
        return file, read_meta(fd, st)

    @contextlib.contextmanager
    def writing(self, bucket_dir: Path, key: str) -> Iterator[Pending]:
        """A temporary file beside the object's: write it, then `commit` it; left undone it is removed,
        and no reader ever sees it."""
        check_key(key)
        dest = self.tree(bucket_dir).path_for(key)
        made = _make_parents(bucket_dir, dest.parent, key)
        fd, tmp = _mkstemp(dest.parent, key)
        file = os.fdopen(fd, "w+b")
        try:
            yield Pending(file, Path(tmp), dest, key)
        except BaseException:
            file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            for directory in reversed(made):  # a failed first write into a new prefix leaves no directories
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise
        finally:
            if not file.closed:
                file.close()

    def commit(self, pending: Pending, meta: ObjectMeta, *, exclusive: bool = False) -> ObjectMeta:
        """Give the written temporary file its metadata and rename it over the object's file (`exclusive`:
        FileExistsError, and nothing replaced, when the object exists by then)."""
        file = pending.file
        file.flush()
        os.fchmod(file.fileno(), FILE_MODE)
        meta.size = os.fstat(file.fileno()).st_size
        _write_meta(file.fileno(), meta)
        try:
            if exclusive:
                os.link(pending.tmp, pending.dest)  # fails, atomically, when the key exists by now
                os.unlink(pending.tmp)
            else:
                os.replace(pending.tmp, pending.dest)
        except IsADirectoryError:
            raise UnstorableKey(f"cannot store key {pending.key!r}: other keys already use it as a prefix") from None
        st = os.lstat(pending.dest)
        meta.modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        return meta

    def delete(self, bucket_dir: Path, key: str) -> None:
        try:
            check_key(key)
        except UnstorableKey:
            return  # never stored, so already deleted
        self.tree(bucket_dir).delete(key)


def _make_parents(bucket_dir: Path, parent: Path, key: str) -> list[Path]:
    made: list[Path] = []
    missing = []
    directory = parent
    while directory != bucket_dir and not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            if not directory.is_dir():
                raise UnstorableKey(f"cannot store key {key!r}: a parent of it is already stored as an object") \
                    from None
            continue
        except NotADirectoryError:
            raise UnstorableKey(f"cannot store key {key!r}: a parent of it is already stored as an object") from None
        made.append(directory)
    return made


def _mkstemp(directory: Path, key: str) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
    except NotADirectoryError:
        raise UnstorableKey(f"cannot store key {key!r}: a parent of it is already stored as an object") from None
