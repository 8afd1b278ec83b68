"""Parse the URIs forklift moves data between, and S3's rules for bucket names and keys.

Accepted forms:
    s3://bucket/key          an object (or, where a prefix is expected, every key starting with `key`)
    file:///abs/path, path   the local filesystem; relative paths are taken from the working directory
    https://host/path        read only (http:// too, for loopback servers)

A file URI is taken literally (no percent-decoding), as SageMaker local mode writes them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from forklift.storage.errors import InvalidBucketName, InvalidURI, UnsafeKey

REMOTE_SCHEMES = ("s3", "https", "http")
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
# Names S3 reserves for its own features (access points, multi-region, directory buckets, ...).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@dataclass(frozen=True)
class Location:
    """A parsed URI. For `file`, `bucket` is empty and `key` is the absolute path."""

    scheme: str
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        if self.scheme == "file":
            return f"file://{self.key}"
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def basename(self) -> str:
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def with_key(self, key: str) -> Location:
        return replace(self, key=key)

    def as_directory(self) -> Location:
        """The same location as a "directory" prefix: `s3://b/dir` → `s3://b/dir/`, so `dir2/` is not matched."""
        if self.key and not self.key.endswith("/"):
            return self.with_key(self.key + "/")
        return self

    def __str__(self) -> str:
        return self.uri


def parse_uri(uri: str | os.PathLike[str]) -> Location:
    text = os.fspath(uri)
    if not text:
        raise InvalidURI("empty URI")
    if "://" not in text:
        return _local(text, text)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        if not rest.startswith("/"):  # file://host/path names another machine
            raise InvalidURI(f"{text}: a file URI needs an absolute path (file:///abs/path)")
        return _local(rest, text)
    if scheme not in REMOTE_SCHEMES:
        raise InvalidURI(f"{text}: unsupported scheme {scheme!r} (use s3://, file:// or a local path)")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InvalidURI(f"{text}: missing bucket name" if scheme == "s3" else f"{text}: missing host")
    return Location(scheme, bucket, key)


def _local(path: str, original: str) -> Location:
    # abspath also folds `..`; keep a trailing slash because it means "directory" in prefix semantics.
    absolute = os.path.abspath(os.path.expanduser(path))
    if path.endswith("/") and absolute != "/":
        absolute += "/"
    if "\0" in absolute:
        raise InvalidURI(f"{original!r}: NUL byte in path")
    return Location("file", "", absolute)


def validate_bucket_name(name: str) -> str:
    """Return `name` if S3 would accept it as a new bucket, else raise InvalidBucketName naming the rule."""

    def bad(rule: str) -> InvalidBucketName:
        return InvalidBucketName(f"invalid bucket name {name!r}: {rule}")

    if not 3 <= len(name) <= 63:
        raise bad("bucket names must be between 3 and 63 characters long")
    if not _BUCKET_CHARS.fullmatch(name):
        raise bad("bucket names may contain only lowercase letters, digits, dots (.) and hyphens (-)")
    if not (name[0].isalnum() and name[-1].isalnum()):
        raise bad("bucket names must begin and end with a letter or digit")
    if ".." in name:
        raise bad("bucket names must not contain two adjacent periods")
    if _is_ip_address(name):
        raise bad("bucket names must not be formatted as an IP address")
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            raise bad(f"bucket names must not start with the reserved prefix {prefix!r}")
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            raise bad(f"bucket names must not end with the reserved suffix {suffix!r}")
    return name


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def key_parts(key: str, *, what: str = "key") -> tuple[str, ...]:
    """Split an object key into path components that are safe as file names below one directory.

    S3 keys may hold `..`, `.` or empty components (`a//b`); none of them can be a file below a
    bucket directory without either escaping it or colliding with another key, so they are refused.
    """
    if not key:
        raise UnsafeKey(f"empty {what}")
    if "\0" in key:
        raise UnsafeKey(f"{what} {key!r} contains a NUL byte")
    parts = tuple(key.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            shown = "an empty" if part == "" else f"a {part!r}"
            raise UnsafeKey(f"{what} {key!r} has {shown} path component; it cannot be stored as a file "
                            f"without leaving its directory")
    return parts


def relative_path(rel: str, *, source: str) -> PurePosixPath:
    """A key relative to a prefix, checked to be a plain relative path before it becomes a file name."""
    parts = key_parts(rel, what=f"key {source!r} relative path")
    return PurePosixPath(*parts)
