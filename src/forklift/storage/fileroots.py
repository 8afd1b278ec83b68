"""Which host directories a `file://` URI sent to the server may reach: `file_roots` in config.toml.

    file_roots = ["/data", "/srv/datasets"]     # none by default: the server then refuses every file://

A request names host paths for the server (running as root) to read or write, so only directories
the machine's owner listed are reachable. Below a root nothing is followed that could lead out: the
path is folded lexically (`..` cannot climb above the root) and opened one component at a time
without following symlinks (`hostpaths`), at Create time and again each time the data is used, so a
symlink swapped in after a job was accepted leads nowhere. The root itself is the owner's choice
and is opened as written.

The key is read at each use, like `s3_endpoint_url`: a running server sees a change without a restart.
The `forklift` command acting for the user who runs it (`forklift buckets cp ./data s3://…`) is not
bound by it: that user reaches only what their own permissions allow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from forklift.config import ConfigError, Settings, read_config_file
from forklift.storage.errors import StorageError
from forklift.storage.uri import Location

CONFIG_KEY = "file_roots"
EXAMPLE = 'file_roots = ["/data"]'


class OutsideFileRoots(StorageError):
    """A file:// URI the server may not touch: outside every file root, or through a symlink below one."""


@dataclass(frozen=True)
class HostPath:
    """A file:// location split into the root it lies under and the components below that root."""

    root: Path
    parts: tuple[str, ...]
    uri: str


def file_roots(settings: Settings) -> tuple[Path, ...]:
    """The configured roots, normalized (no trailing slash, no `.` or `..`), as written otherwise."""
    path, data = read_config_file(settings.home, check=False)  # read at each use: see read_config_file
    value = data.get(CONFIG_KEY, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.startswith("/") for v in value):
        raise ConfigError(f'{path}: {CONFIG_KEY} must be a list of absolute directory paths, e.g. {EXAMPLE}')
    return tuple(Path(os.path.normpath(v)) for v in value)


def describe_roots(settings: Settings) -> str:
    roots = file_roots(settings)
    listed = ", ".join(str(r) for r in roots) if roots else f"none; e.g. {EXAMPLE}"
    return f"{CONFIG_KEY} in {settings.home / 'config.toml'} ({listed})"


def locate(loc: Location, settings: Settings) -> HostPath:
    """The root `loc` lies under and its components below it, or OutsideFileRoots naming the setting."""
    # Location.key is already absolute with `..` folded, so `/data/../etc` is `/etc` here, not below /data.
    path = PurePosixPath(loc.key)
    candidates = [root for root in file_roots(settings) if path.is_relative_to(root)]
    if not candidates:
        raise OutsideFileRoots(f"{loc.uri} is not under a directory the server may use: file:// paths must be "
                               f"below one listed in {describe_roots(settings)}; add its directory there or "
                               "use an s3:// URI")
    root = max(candidates, key=lambda r: len(r.parts))
    return HostPath(root, path.relative_to(root).parts, loc.uri)


def symlink_refused(host: HostPath, component: str) -> OutsideFileRoots:
    return OutsideFileRoots(f"{host.uri}: {component!r} is a symbolic link; below a file root ({host.root}) the "
                            "server follows no symlink, so that none can lead out of it")
