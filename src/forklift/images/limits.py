"""How much one image may put on disk while it is unpacked, and the count kept against it.

A layer is a few compressed bytes that may claim anything: 10 MB of gzip can hold 10 GiB of zeros,
a 234-byte GNU sparse header a 1 TiB file, a tar of empty entries millions of inodes. So every
entry is counted, across all layers of the image, *before* it is written:

- bytes: the size of each regular file as the tar header gives it (a sparse file by its real,
  apparent size, since it is written out in full); a file replaced by a higher layer counts again.
  The cap is `max_image_bytes`, or by default the free space of the rootfs directory when the
  unpack starts, less `DISK_RESERVE` (see `reserve_for`).
- files: every entry created (files, directories, symlinks, hard links, devices); the cap is
  `max_image_files`.
- free disk: checked before the first layer (room for at least the compressed layers) and again
  at least every `_CHECK_BYTES` counted bytes or `_CHECK_ENTRIES` entries; the unpack stops when
  free space (or free inodes) would fall below the reserve, before a disk is filled.

Each stop raises `ImageLimitExceeded`, whose message names the image, the limit and what to change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forklift.config import Settings
from forklift.errors import FREE_SPACE, no_space
from forklift.images.errors import ImageError

GiB = 1 << 30
MiB = 1 << 20
DISK_RESERVE = GiB  # free space an unpack always leaves (less on a small filesystem: `reserve_for`)
INODE_RESERVE = 10_000  # free inodes an unpack always leaves
_CHECK_BYTES = 32 * MiB  # statvfs at least this often while counting bytes ...
_CHECK_ENTRIES = 1024  # ... or entries (each small file takes a whole block the count does not see)


class ImageLimitExceeded(ImageError):
    """An image would exceed a size cap or the free disk; the message names the setting to change."""


def human(n: int) -> str:
    """1073741824 -> '1 GiB', 1572864 -> '1.5 MiB'."""
    for unit, size in (("TiB", 1 << 40), ("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def reserve_for(directory: Path) -> int:
    """The free space an unpack leaves on `directory`'s filesystem: 1 GiB, or a tenth of a smaller one."""
    st = os.statvfs(directory)
    return min(DISK_RESERVE, st.f_blocks * st.f_frsize // 10)


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def disk_full(image: str, directory: Path, what: str) -> ImageLimitExceeded:
    """The error for ENOSPC/EDQUOT (or SQLite's full database) met while `what` ran for `image`: the
    checks before a pull or an unpack leave room, so another writer took the space meanwhile."""
    return ImageLimitExceeded(f"image {image}: {what}: {no_space(directory)}")


def check_download_room(image: str, directory: Path, sizes: Sequence[int]) -> None:
    """Before the first blob is fetched: the blobs a manifest announces must fit with the reserve kept,
    so a registry announcing a 1 TiB layer is refused before a byte of it is written."""
    need = sum(sizes)
    free = free_bytes(directory)
    reserve = reserve_for(directory)
    if free - need < reserve:
        raise ImageLimitExceeded(
            f"image {image} needs {human(need)} to download and {directory} has {human(free)} free (forklift "
            f"keeps {human(reserve)} free): {FREE_SPACE}")


@dataclass(frozen=True)
class UnpackLimits:
    max_bytes: int | None  # None: the free disk at the start, less the reserve
    max_files: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UnpackLimits:
        return cls(settings.max_image_bytes, settings.max_image_files)


class UnpackBudget:
    """The count for one image being unpacked into `directory` (all its layers)."""

    def __init__(self, image: str, limits: UnpackLimits, directory: Path) -> None:
        self.image, self.limits, self.directory = image, limits, directory
        self.reserve = reserve_for(directory)
        free = free_bytes(directory)
        self._from_disk = limits.max_bytes is None
        self.max_bytes = max(free - self.reserve, 0) if limits.max_bytes is None else limits.max_bytes
        self.bytes = self.files = 0
        self._unchecked_bytes = self._unchecked_entries = 0

    def check_room(self, compressed: Sequence[int]) -> None:
        """Before the first layer: the rootfs takes at least as much as its compressed layers."""
        need = sum(compressed)
        free = free_bytes(self.directory)
        if free - need < self.reserve:
            raise ImageLimitExceeded(
                f"image {self.image} needs at least {human(need)} to unpack and {self.directory} has "
                f"{human(free)} free (forklift keeps {human(self.reserve)} free): {FREE_SPACE}")

    def entry(self, size: int) -> None:
        """Count one entry of `size` bytes (0 for all but regular files) before it is written."""
        self.files += 1
        self.bytes += size
        if self.files > self.limits.max_files:
            raise ImageLimitExceeded(
                f"image {self.image} has more than max_image_files ({self.limits.max_files:,}) files: "
                "raise max_image_files in config.toml")
        if self.bytes > self.max_bytes:
            raise ImageLimitExceeded(self._too_big())
        self._unchecked_bytes += size
        self._unchecked_entries += 1
        if self._unchecked_bytes >= _CHECK_BYTES or self._unchecked_entries >= _CHECK_ENTRIES:
            self.check_disk(size)

    def check_disk(self, about_to_write: int = 0) -> None:
        """Stop while the disk still holds the reserve (other writers share it, so look again)."""
        self._unchecked_bytes = self._unchecked_entries = 0
        st = os.statvfs(self.directory)
        if st.f_bavail * st.f_frsize - about_to_write < self.reserve:
            raise ImageLimitExceeded(
                f"image {self.image}: unpacking stopped after {human(self.bytes)} because free space in "
                f"{self.directory} fell below the {human(self.reserve)} forklift keeps free: {FREE_SPACE}")
        if st.f_files and st.f_favail < INODE_RESERVE:  # f_files is 0 where inodes are not counted (btrfs)
            raise ImageLimitExceeded(
                f"image {self.image}: unpacking stopped after {self.files:,} files because {self.directory} "
                f"has fewer than {INODE_RESERVE:,} free inodes left: free some there")

    def disk_full(self, what: str) -> ImageLimitExceeded:
        """The error for ENOSPC/EDQUOT met anyway (a concurrent writer took the space)."""
        return disk_full(self.image, self.directory, what)

    def _too_big(self) -> str:
        if self._from_disk:
            return (f"image {self.image} unpacks to more than the {human(self.max_bytes)} free in {self.directory} "
                    f"(less the {human(self.reserve)} forklift keeps free; max_image_bytes is not set): free disk "
                    "space there, or set max_image_bytes in config.toml to refuse such images sooner")
        return (f"image {self.image} unpacks to more than max_image_bytes ({human(self.max_bytes)}): raise "
                "max_image_bytes in config.toml or free disk")
