"""Stage a SageMaker training channel (`InputDataConfig[i].DataSource`) into a host directory.

S3DataType:
    S3Prefix      every object whose key starts with S3Uri (a key equal to S3Uri lands by base name)
    ManifestFile  S3Uri is a JSON list: `[{"prefix": "s3://b/p/"}, "rel/key-1", "rel/key-2", ...]`;
                  the channel holds prefix + each relative key, written at that relative path
S3DataDistributionType:
    FullyReplicated  every host gets everything
    ShardedByS3Key   host i of n gets the objects at positions i, i+n, i+2n, ... in key order,
                     so each host has ~1/n of the objects and together they have each exactly once

A `file://` URI names a host directory or file under the configured file roots (`fileroots`); it is
copied in every mode, read without following symlinks, so what the container sees is what was under
the root when the job started. (Binding the user's directory itself would let a symlink swapped in
after the check lead the bind anywhere on the host.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from forklift.cancel import NEVER, Cancel
from forklift.config import Settings, load_settings
from forklift.storage.base import ObjectInfo, ObjectStore, download_planned, plan_prefix_download
from forklift.storage.errors import ChannelError, NoSuchKey, StorageError
from forklift.storage.resolve import store_for
from forklift.storage.uri import parse_uri

log = logging.getLogger(__name__)

DATA_TYPES = ("S3Prefix", "ManifestFile")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
INPUT_MODES = ("File", "FastFile")
Plan = list[tuple[ObjectInfo, PurePosixPath]]


@dataclass(frozen=True)
class ChannelSource:
    path: Path  # the host directory to mount at /opt/ml/input/data/<channel>


def stage_channel(data_source: dict[str, Any], dest_dir: Path, *, instance_count: int = 1, host_index: int = 0,
                  input_mode: str = "File", settings: Settings | None = None,
                  cancel: Cancel = NEVER) -> ChannelSource:
    """Make the channel's data available to one host; `data_source` is a Channel's DataSource
    (`{"S3DataSource": {...}}`) or the S3DataSource itself. A stop (`cancel`) downloads no further object."""
    s3 = _s3_data_source(data_source)
    uri = s3["S3Uri"]
    data_type = s3.get("S3DataType", "S3Prefix")
    distribution = s3.get("S3DataDistributionType", "FullyReplicated")
    if data_type not in DATA_TYPES:
        raise ChannelError(f"{uri}: S3DataType {data_type!r} is not supported (use {' or '.join(DATA_TYPES)})")
    if distribution not in DISTRIBUTIONS:
        raise ChannelError(f"{uri}: S3DataDistributionType {distribution!r} must be one of {', '.join(DISTRIBUTIONS)}")
    if input_mode not in INPUT_MODES:
        raise ChannelError(f"{uri}: input mode {input_mode!r} is not supported (use {' or '.join(INPUT_MODES)})")
    if instance_count < 1 or not 0 <= host_index < instance_count:
        raise ChannelError(f"{uri}: host index {host_index} is outside 0..{instance_count - 1}")
    sharded = distribution == "ShardedByS3Key" and instance_count > 1
    settings = settings or load_settings()
    dest_dir = Path(dest_dir)
    try:
        store = store_for(uri, settings)
        if data_type == "ManifestFile":
            store, plan = _manifest_plan(store, uri, settings)
        else:
            plan = _prefix_plan(store, uri)
        if sharded:
            plan = plan[host_index::instance_count]
            if not plan:
                log.warning("channel %s: host %d of %d gets no objects", uri, host_index, instance_count)
        download_planned(store, plan, dest_dir, settings.max_concurrent_downloads, cancel)
    except ChannelError:
        raise
    except StorageError as exc:
        raise ChannelError(f"channel {uri}: {exc}") from None
    return ChannelSource(dest_dir)


def _s3_data_source(data_source: dict[str, Any]) -> dict[str, Any]:
    for unsupported in ("FileSystemDataSource", "DatasetSource"):
        if unsupported in data_source:
            raise ChannelError(f"channel data source {unsupported} is not supported; use S3DataSource")
    s3 = data_source.get("S3DataSource", data_source)
    if not isinstance(s3, dict) or not isinstance(s3.get("S3Uri"), str) or not s3["S3Uri"]:
        raise ChannelError("channel S3DataSource has no S3Uri")
    return s3


def _prefix_plan(store: ObjectStore, uri: str) -> Plan:
    loc = parse_uri(uri)  # a file:// prefix naming a directory means that directory: HostFiles.list knows
    plan = plan_prefix_download(loc, store.list(loc.uri))
    if not plan:
        raise ChannelError(f"no objects under {uri}")
    return plan


def _manifest_plan(store: ObjectStore, uri: str, settings: Settings) -> tuple[ObjectStore, Plan]:
    prefix_uri, keys = read_manifest(store, uri)
    prefix = parse_uri(prefix_uri)
    now = datetime.now(tz=UTC)
    entries = [ObjectInfo(prefix.key + key, 0, now, prefix.with_key(prefix.key + key).uri) for key in keys]
    plan = sorted(plan_prefix_download(prefix, entries), key=lambda item: item[0].key)
    # A listed object that is missing fails its download with NoSuchKey naming it; checking each one
    # up front would double the requests for a manifest of many objects.
    return store_for(prefix_uri, settings), plan


def read_manifest(store: ObjectStore, uri: str) -> tuple[str, list[str]]:
    """The prefix and the relative keys (in order, without repeats) of a ManifestFile."""
    try:
        with store.open_read(uri) as stream:
            data = json.loads(stream.read())
    except NoSuchKey:
        raise ChannelError(f"manifest {uri} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelError(f"manifest {uri} is not valid JSON: {exc}") from None
    shape = 'a JSON list: [{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]'
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ChannelError(f"manifest {uri} must be {shape}")
    prefix = data[0].get("prefix")
    if not isinstance(prefix, str) or not prefix:
        raise ChannelError(f"manifest {uri}: the first element must be {{\"prefix\": \"s3://bucket/prefix/\"}}")
    keys = data[1:]
    if not keys:
        raise ChannelError(f"manifest {uri} lists no objects")
    for key in keys:
        if not isinstance(key, str) or not key:
            raise ChannelError(f"manifest {uri}: entry {key!r} is not a relative key string")
    return prefix, list(dict.fromkeys(keys))
