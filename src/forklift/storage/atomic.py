"""Write files so that a reader sees either the old content or the whole new content, never a part.

For writers that need a path (a copy, a download); data already in memory goes through
`forklift.atomicfile.write_atomically`, with the same temporary-name prefix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from forklift.atomicfile import TEMP_PREFIX

# Listings skip names with TEMP_PREFIX: they are transfers in progress (or left by a crash).
FILE_MODE = 0o644  # mkstemp makes 0600; objects are data meant to be read by containers too


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it is renamed over `dest`, on failure removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=TEMP_PREFIX)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def copy_file(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
