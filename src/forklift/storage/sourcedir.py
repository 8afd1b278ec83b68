"""A SageMaker script-mode code archive (the SDK's `sourcedir.tar.gz`) unpacked into a host directory.

    fetch_source_dir(uri, dest_dir, settings, cancel)

The archive is the user's upload and is trusted no more than any other: it is read through the same
stores as a channel (`store_for`: S3, the embedded store, `file://` under `file_roots`), extracted by
`archive.extract_tar_gz` (no absolute names, no `..`, no links out, no devices) within
`SOURCE_BOUNDS`, and on any failure, a stop included, `dest_dir` is removed whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from forklift.cancel import NEVER, Cancel
from forklift.config import Settings
from forklift.storage.archive import ArchiveBounds, extract_tar_gz
from forklift.storage.base import download_stoppable
from forklift.storage.resolve import store_for

# Code, not data: the SDK packs a source_dir of scripts; a tree past these is a mistake or a bomb.
SOURCE_BOUNDS = ArchiveBounds(max_bytes=1 << 30, max_entries=100_000)


def fetch_source_dir(uri: str, dest_dir: Path, settings: Settings, cancel: Cancel = NEVER,
                     bounds: ArchiveBounds = SOURCE_BOUNDS) -> Path:
    """Download the archive at `uri` beside `dest_dir` and unpack it into `dest_dir` (emptied first, so
    an attempt started again never keeps an earlier one's files); the archive itself is not kept."""
    dest_dir = Path(dest_dir)
    archive = dest_dir.parent / f".{dest_dir.name}.tar.gz"
    shutil.rmtree(dest_dir, ignore_errors=True)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_stoppable(store_for(uri, settings), uri, archive, cancel)
        cancel.raise_if_set()
        extract_tar_gz(archive, dest_dir, bounds)
    except BaseException:
        shutil.rmtree(dest_dir, ignore_errors=True)
        raise
    finally:
        archive.unlink(missing_ok=True)
    return dest_dir
