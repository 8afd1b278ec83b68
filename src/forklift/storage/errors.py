"""What can go wrong when moving data; every message names the URI (or bucket) it is about."""

from __future__ import annotations

from forklift.errors import ForkliftError


class StorageError(ForkliftError):
    """Base of every storage failure: a one-line message fit for a user."""


class InvalidURI(StorageError):
    """A string that is not a URI forklift can read or write."""


class InvalidBucketName(StorageError):
    """A bucket name that breaks one of S3's naming rules (the message names the rule)."""


class NoSuchBucket(StorageError):
    def __init__(self, bucket: str) -> None:
        super().__init__(f"bucket {bucket!r} does not exist (create it with `forklift buckets mb s3://{bucket}`)")
        self.bucket = bucket


class BucketAlreadyExists(StorageError):
    def __init__(self, bucket: str) -> None:
        super().__init__(f"bucket {bucket!r} already exists")
        self.bucket = bucket


class NoSuchKey(StorageError):
    def __init__(self, uri: str) -> None:
        super().__init__(f"no such object: {uri}")
        self.uri = uri


class UnsafeKey(StorageError):
    """A key that cannot be stored or written as a file without leaving its directory."""


class ReadOnlyStore(StorageError):
    """A write to a source forklift only reads from (https://)."""


class UnsafeArchive(StorageError):
    """A tar member that would land outside the extraction directory, or is not a file, dir or symlink."""


class ChannelError(StorageError):
    """A training channel cannot be staged; the message names the channel URI."""


class LocalFileError(StorageError, OSError):
    """A local file to copy from or to cannot be read or written; the message names it."""
