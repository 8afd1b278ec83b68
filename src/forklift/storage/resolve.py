"""Pick the store that holds a URI; the one place that knows which backend serves which scheme."""

from __future__ import annotations

from forklift.config import Settings, load_settings
from forklift.storage.base import BucketStore, ObjectStore
from forklift.storage.embedded import EmbeddedBuckets
from forklift.storage.hostpaths import HostFiles
from forklift.storage.https import HttpsObjects
from forklift.storage.local import LocalFiles
from forklift.storage.s3 import S3Backend
from forklift.storage.settings import s3_endpoint
from forklift.storage.uri import parse_uri


def bucket_store(settings: Settings | None = None) -> BucketStore:
    """Where `s3://` lives: the configured S3 endpoint, else the embedded store under FORKLIFT_HOME."""
    settings = settings or load_settings()
    endpoint = s3_endpoint(settings)
    if endpoint:
        return S3Backend.from_settings(settings, endpoint)
    return EmbeddedBuckets.from_settings(settings)


def store_for(uri: str, settings: Settings | None = None, *, as_user: bool = False) -> ObjectStore:
    """The store for `uri`. A local path is confined to the configured file roots (`fileroots`), as the
    server needs; `as_user` is the `forklift` command acting for whoever runs it, who may name any path
    their own permissions reach."""
    scheme = parse_uri(uri).scheme
    if scheme == "s3":
        return bucket_store(settings)
    if scheme in ("https", "http"):
        return HttpsObjects()
    if as_user:
        return LocalFiles()
    return HostFiles(settings or load_settings())
