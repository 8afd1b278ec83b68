"""A per-container writable root: overlayfs with the shared image rootfs as the read-only lower layer.

Writes by the container, and the working directory runc creates, land in `upper/` under the
container's state dir; the cached rootfs is never modified.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from forklift.runtime.errors import ContainerRuntimeError

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


class OverlayError(ContainerRuntimeError, OSError):
    pass


@dataclass(frozen=True)
class Overlay:
    lower: Path
    upper: Path
    work: Path
    merged: Path

    @classmethod
    def under(cls, lower: Path, state_dir: Path) -> Overlay:
        return cls(lower=Path(lower).resolve(), upper=state_dir / "upper", work=state_dir / "work",
                   merged=state_dir / "rootfs")

    def options(self) -> str:
        for p in (self.lower, self.upper, self.work):
            if any(c in str(p) for c in ",:\\"):
                raise OverlayError(errno.EINVAL, f"overlay path must not contain ',', ':' or '\\': {p}")
        return f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work}"


def is_mounted(path: Path) -> bool:
    target = os.fsencode(os.path.realpath(path))
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            return any(line.split()[4] == target for line in f)
    except OSError:
        return False


def mount(ov: Overlay) -> None:
    if not ov.lower.is_dir():
        raise OverlayError(errno.ENOENT, f"rootfs not found: {ov.lower}")
    for d in (ov.upper, ov.work, ov.merged):
        d.mkdir(parents=True, exist_ok=True)
    if is_mounted(ov.merged):
        return
    opts = ov.options().encode()
    if _libc.mount(b"overlay", os.fsencode(ov.merged), b"overlay", 0, opts) != 0:
        err = ctypes.get_errno()
        raise OverlayError(err, f"mount overlay on {ov.merged}: {os.strerror(err)}")
    tmp = ov.merged / "tmp"  # images without /tmp: give one, in the upper layer
    if not tmp.exists() and not tmp.is_symlink():
        tmp.mkdir()
        tmp.chmod(0o1777)


def unmount(ov: Overlay, remove: bool = True) -> None:
    """Unmount (lazily if busy) and, with `remove`, delete the upper and work layers."""
    merged = os.fsencode(ov.merged)
    while is_mounted(ov.merged):
        if _libc.umount2(merged, 0) != 0:
            err = ctypes.get_errno()
            if err == errno.EBUSY:
                _libc.umount2(merged, MNT_DETACH)
            elif err in (errno.EINVAL, errno.ENOENT):
                break
            else:
                raise OverlayError(err, f"umount {ov.merged}: {os.strerror(err)}")
    if remove:
        for d in (ov.upper, ov.work):
            shutil.rmtree(d, ignore_errors=True)
        try:
            ov.merged.rmdir()
        except OSError:
            pass
