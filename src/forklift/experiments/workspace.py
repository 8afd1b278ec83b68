"""`--workspace DIR`: one immutable archive per experiment in the bucket store, shared by its clones."""

from __future__ import annotations

import tempfile
from pathlib import Path

from forklift.config import Settings
from forklift.experiments.errors import InvalidExperiment
from forklift.experiments.request import CODE_ARCHIVE, OUTPUT_BUCKET, WORKSPACE_BUCKET
from forklift.storage import BucketAlreadyExists, bucket_store, pack_tar_gz


def ensure_bucket(settings: Settings, name: str) -> None:
    try:
        bucket_store(settings).make_bucket(name)
    except BucketAlreadyExists:
        pass


def ensure_buckets(settings: Settings) -> None:
    ensure_bucket(settings, OUTPUT_BUCKET)


def upload_workspace(settings: Settings, experiment: str, directory: str | Path) -> str:
    """Pack `directory`'s contents and upload them; returns the archive's s3:// URI."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise InvalidExperiment(f"--workspace {directory}: not a directory")
    ensure_bucket(settings, WORKSPACE_BUCKET)
    uri = f"s3://{WORKSPACE_BUCKET}/{experiment}/{CODE_ARCHIVE}"
    with tempfile.TemporaryDirectory(prefix="forklift-workspace-") as tmp:
        archive = pack_tar_gz(directory.resolve(), Path(tmp) / CODE_ARCHIVE)
        bucket_store(settings).upload(archive, uri)
    return uri


def delete_workspace(settings: Settings, uri: str) -> None:
    store = bucket_store(settings)
    if store.exists(uri):
        store.delete(uri)
