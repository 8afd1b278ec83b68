"""Pick the store that holds a URI; the one place that knows which backend serves which scheme."""

from __future__ import annotations

from forklift.config import Settings, load_settings
from forklift.storage.base import BucketStore, ObjectStore
from forklift.storage.embedded import EmbeddedBuckets
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


def store_for(uri: str, settings: Settings | None = None) -> ObjectStore:
    scheme = parse_uri(uri).scheme
    if scheme == "s3":
        return bucket_store(settings)
    if scheme in ("https", "http"):
        return HttpsObjects()
    return LocalFiles()
