"""An S3 endpoint (AWS, MinIO, moto, ...) through boto3, behind the ObjectStore protocol.

Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID/SECRET, ~/.aws, ...). Path-style
addressing is used because local S3 servers listen on an IP or `localhost`, where virtual-host
names (`bucket.127.0.0.1`) do not resolve. botocore errors are turned into StorageError subclasses
here, at the boundary, so callers and the CLI see one kind of failure with a readable message.
Every call rides out a faulty endpoint by the registry's waits in config.toml (`s3waits`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import boto3
from boto3.exceptions import Boto3Error, S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from forklift.cancel import NEVER, Cancel
from forklift.config import Settings
from forklift.storage.atomic import atomic_path
from forklift.storage.base import BucketInfo, ObjectInfo, PrefixTransfers
from forklift.storage.errors import BucketAlreadyExists, InvalidURI, NoSuchBucket, NoSuchKey, StorageError
from forklift.storage.s3waits import TRANSFER, Progress, S3Waits
from forklift.storage.uri import Location, parse_uri, validate_bucket_name

_NOT_FOUND = {"404", "NotFound", "NoSuchKey"}
_clients: dict[tuple[str, str, S3Waits], Any] = {}
_clients_lock = threading.Lock()  # boto3 sessions are not thread-safe; clients are
T = TypeVar("T")


def s3_client(endpoint_url: str, region: str, waits: S3Waits) -> Any:
    """One client per (endpoint, region, waits), created once: building one costs ~0.1 s."""
    with _clients_lock:
        client = _clients.get((endpoint_url, region, waits))
        if client is None:
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region,
                                                    config=waits.client_config())
            _clients[(endpoint_url, region, waits)] = client
        return client


class S3Backend(PrefixTransfers):
    def __init__(self, endpoint_url: str, region: str = "us-east-1", client: Any = None,
                 waits: S3Waits | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.waits = waits or S3Waits()
        self.client = client or s3_client(endpoint_url, region, self.waits)

    @classmethod
    def from_settings(cls, settings: Settings, endpoint_url: str) -> S3Backend:
        backend = cls(endpoint_url, settings.region, waits=S3Waits.from_settings(settings))
        backend.workers = settings.max_concurrent_downloads
        return backend

    def __repr__(self) -> str:
        return f"S3Backend({self.endpoint_url!r})"

    @staticmethod
    def _location(uri: str, *, need_key: bool) -> Location:
        loc = parse_uri(uri)
        if loc.scheme != "s3":
            raise InvalidURI(f"{uri}: the S3 backend only handles s3:// URIs")
        if need_key and (not loc.key or loc.key.endswith("/")):
            raise InvalidURI(f"{uri}: names a bucket or prefix, not an object key")
        return loc

    def _call(self, loc: Location, fn: Callable[[Progress], T]) -> T:
        """fn(progress) within the waits, its failure turned into a StorageError about `loc`."""
        with self._errors(loc):
            return self.waits.call(fn)

    @contextmanager
    def _errors(self, loc: Location) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise self._storage_error(loc, exc) from None

    def _storage_error(self, loc: Location, exc: Exception) -> StorageError:
        if (why := self.waits.describe(exc, self.endpoint_url)) is not None:
            return StorageError(f"{loc.uri}: {why}")
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "NoSuchBucket" or (code in _NOT_FOUND and not self._bucket_exists(loc.bucket)):
                return NoSuchBucket(loc.bucket)
            if code in _NOT_FOUND:
                return NoSuchKey(loc.uri)
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return BucketAlreadyExists(loc.bucket)
            message = error.get("Message") or exc
            return StorageError(f"{loc.uri}: {code or 'error'} from {self.endpoint_url}: {message}")
        if isinstance(exc, S3UploadFailedError):  # the transfer manager hides the ClientError in its message
            if "NoSuchBucket" in str(exc):
                return NoSuchBucket(loc.bucket)
            return StorageError(f"{loc.uri}: upload failed: {exc}")
        if isinstance(exc, NoCredentialsError):
            return StorageError(f"no AWS credentials for the S3 endpoint {self.endpoint_url}: set AWS_ACCESS_KEY_ID "
                                f"and AWS_SECRET_ACCESS_KEY (any values do for a local S3 server)")
        return StorageError(f"{loc.uri}: {exc}")

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            return False
        return True

    # --- ObjectStore -------------------------------------------------------------------------------

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        loc = self._location(prefix_uri, need_key=False)

        def listing(_: Progress) -> list[ObjectInfo]:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=loc.key)
            return [ObjectInfo(item["Key"], item["Size"], item["LastModified"], loc.with_key(item["Key"]).uri)
                    for page in pages for item in page.get("Contents", [])]

        return sorted(self._call(loc, listing), key=lambda obj: obj.key)

    def download(self, uri: str, dest_path: Path) -> Path:
        return self.download_stopping(uri, dest_path, NEVER)

    def download_stopping(self, uri: str, dest_path: Path, cancel: Cancel) -> Path:
        """The object at `dest_path`, whole; a stop (`cancel`) ends the transfer at its next chunk with
        `Cancelled` and leaves nothing there."""
        loc = self._location(uri, need_key=True)
        dest_path = Path(dest_path)

        def fetch(progress: Progress) -> None:
            cancel.raise_if_set()  # each attempt: a retry after a stop begins nothing

            def watched(nbytes: int) -> None:
                cancel.raise_if_set()
                progress(nbytes)
            self.client.download_file(loc.bucket, loc.key, str(tmp), Callback=watched, Config=TRANSFER)

        with self._errors(loc), atomic_path(dest_path) as tmp:
            self.waits.call(fetch)
        cancel.raise_if_set()
        return dest_path

    def upload(self, src_path: Path, uri: str) -> None:
        loc = self._location(uri, need_key=True)
        self._call(loc, lambda progress: self.client.upload_file(str(src_path), loc.bucket, loc.key,
                                                                 Callback=progress, Config=TRANSFER))

    def copy(self, src_uri: str, dst_uri: str) -> None:
        src = self._location(src_uri, need_key=True)
        dst = self._location(dst_uri, need_key=True)
        self._call(src, lambda _: self.client.head_object(Bucket=src.bucket, Key=src.key))
        # server side: the bytes never pass through this machine
        self._call(dst, lambda _: self.client.copy({"Bucket": src.bucket, "Key": src.key}, dst.bucket, dst.key))

    def delete(self, uri: str) -> None:
        loc = self._location(uri, need_key=True)
        self._call(loc, lambda _: self.client.delete_object(Bucket=loc.bucket, Key=loc.key))

    def exists(self, uri: str) -> bool:
        loc = self._location(uri, need_key=True)
        try:
            self._call(loc, lambda _: self.client.head_object(Bucket=loc.bucket, Key=loc.key))
        except (NoSuchKey, NoSuchBucket):
            return False
        return True

    def open_read(self, uri: str) -> BinaryIO:
        loc = self._location(uri, need_key=True)
        body: BinaryIO = self._call(loc, lambda _: self.client.get_object(Bucket=loc.bucket, Key=loc.key)["Body"])
        return body

    # --- BucketStore -------------------------------------------------------------------------------

    def list_buckets(self) -> list[BucketInfo]:
        response = self._call(Location("s3", "*", ""), lambda _: self.client.list_buckets())
        return sorted((BucketInfo(b["Name"], b.get("CreationDate")) for b in response.get("Buckets", [])),
                      key=lambda b: b.name)

    def make_bucket(self, name: str) -> None:
        validate_bucket_name(name)
        if self._bucket_exists(name):  # us-east-1 answers a repeated CreateBucket with success; be uniform
            raise BucketAlreadyExists(name)
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":  # S3 refuses an explicit us-east-1 constraint, and needs any other
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self._call(Location("s3", name, ""), lambda _: self.client.create_bucket(**kwargs))
