"""Build an image from a directory: a rootfs on its own, or a folder layered onto a base image.

The new layer is a gzip tar written straight into the blob store while its two digests are computed
(the blob digest over the compressed bytes, the diff ID over the tar), so nothing is read twice.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform as host_platform
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, cast

from forklift.images.content import BlobStore, Lease
from forklift.images.errors import ImageError
from forklift.images.imagestore import ImageStore, LocalImage
from forklift.images.records import ImageRecord
from forklift.reference import parse
from forklift.registry.manifest import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    JSONObject,
    Manifest,
    oci_architecture,
)


@dataclass(frozen=True)
class BuildOptions:
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: Sequence[str] = ()  # "K=V"
    workdir: str | None = None
    user: str | None = None  # the image's `User`: "uid[:gid]" or "name[:group]"
    labels: dict[str, str] = field(default_factory=dict)
    dest: str = "/"  # where the directory's contents land in the image


class _HashingSink:
    """Hashes what passes through on its way to `target` (the uncompressed tar → diff ID)."""

    def __init__(self, target: gzip.GzipFile):
        self._target = target
        self.hasher = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self._target.write(data)

    def flush(self) -> None:
        pass


def _entries(directory: Path) -> Iterable[Path]:
    """Every path under `directory`, parents first, in a stable order."""
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(dirs + files):
            yield Path(root) / name


def write_layer(blobs: BlobStore, directory: Path, dest: str = "/", compresslevel: int = 6,
                lease: Lease | None = None) -> tuple[Descriptor, str]:
    """Tar + gzip `directory` into the store (held by `lease` when given); returns (layer descriptor, diff ID)."""
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")
    prefix = PurePosixPath(dest.strip("/")) if dest.strip("/") else None
    with blobs.writer(lease) as blob:
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=compresslevel, mtime=0) as compressed:
            sink = _HashingSink(compressed)
            # A stream ("w|") only writes to its file object: the sink needs no read, seek or tell.
            with tarfile.open(fileobj=cast(IO[bytes], sink), mode="w|", format=tarfile.PAX_FORMAT) as tar:
                if prefix is not None:
                    for depth in range(1, len(prefix.parts) + 1):
                        info = tarfile.TarInfo(str(PurePosixPath(*prefix.parts[:depth])))
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                        tar.addfile(info)
                for path in _entries(directory):
                    relative = path.relative_to(directory).as_posix()
                    arcname = str(prefix / relative) if prefix is not None else relative
                    try:
                        tar.add(path, arcname=arcname, recursive=False)
                    except OSError as exc:
                        raise ImageError(f"cannot add {path} to the image: {exc.strerror}") from None
    if blob.digest is None:  # set when the block above commits the blob
        raise RuntimeError(f"the layer of {directory} was not stored")
    return Descriptor(OCI_LAYER_GZIP, blob.digest, blob.size), "sha256:" + sink.hasher.hexdigest()


def _merge_env(base: list[str], overrides: Sequence[str]) -> list[str]:
    merged = {item.partition("=")[0]: item for item in base}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"environment variable '{item}' must be KEY=VALUE")
        merged[item.partition("=")[0]] = item
    return list(merged.values())


def image_config(base: JSONObject | None, diff_id: str, options: BuildOptions, created_by: str) -> JSONObject:
    config: JSONObject = json.loads(json.dumps(base)) if base else {
        "architecture": oci_architecture(host_platform.machine()), "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": [],
    }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    runtime: JSONObject = config.setdefault("config", {}) or {}
    config["config"] = runtime
    if options.entrypoint is not None:
        runtime["Entrypoint"] = options.entrypoint
        runtime.pop("Cmd", None)  # as docker: a new entrypoint drops the base image's cmd
    if options.cmd is not None:
        runtime["Cmd"] = options.cmd
    if options.env:
        runtime["Env"] = _merge_env(runtime.get("Env") or [], options.env)
    elif "Env" not in runtime:
        runtime["Env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    if options.workdir is not None:
        runtime["WorkingDir"] = options.workdir
    if options.user is not None:
        runtime["User"] = options.user
    if options.labels:
        runtime["Labels"] = {**(runtime.get("Labels") or {}), **options.labels}
    config["created"] = now
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created": now, "created_by": created_by})
    return config


def build(
    store: ImageStore,
    directories: Sequence[Path],
    *,
    tag: str,
    base: LocalImage | None = None,
    options: BuildOptions = BuildOptions(),
) -> LocalImage:
    """One new layer per directory, on top of `base` (already in the store) or from scratch."""
    if not directories:
        raise ValueError("nothing to build: give at least one directory")
    ref = parse(tag)
    config = store.config(base) if base else None
    layers = list(base.layers) if base else []
    # Until the record lands, prune keeps what the build writes (and the base it builds on).
    held = [d.digest for d in [base.config_descriptor, *layers]] if base else []
    with store.blobs.lease(*held) as lease:
        for directory in directories:
            layer, diff_id = write_layer(store.blobs, Path(directory), options.dest, lease=lease)
            layers.append(layer)
            config = image_config(config, diff_id, options, f"forklift images build {directory}")
            options = BuildOptions(dest=options.dest)  # runtime settings apply once
        config_raw = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        config_digest = store.blobs.put_bytes(config_raw, lease)
        manifest_json = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": Descriptor(OCI_CONFIG, config_digest, len(config_raw)).to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        raw = json.dumps(manifest_json, separators=(",", ":")).encode()
        digest = store.blobs.put_bytes(raw, lease)
        if config is None:  # there was at least one directory
            raise ValueError("nothing to build: give at least one directory")
        record = ImageRecord(str(ref), digest, None, OCI_MANIFEST, f"{config['os']}/{config['architecture']}",
                             len(config_raw) + sum(layer.size for layer in layers), time.time())
        store.records.put(record)
    return LocalImage(record.reference, record, Manifest(raw, OCI_MANIFEST, digest))
