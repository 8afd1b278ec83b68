"""Write a file so that a reader sees either the old content or all of the new, never a part.

The data goes to a temporary file on the same filesystem, which is then renamed over the target;
writers in other threads and processes each get their own temporary file. Standard library only.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path

TEMP_PREFIX = ".forklift-tmp-"


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644, fsync: bool = False,
                     tmp_dir: Path | None = None) -> None:
    """Replace `path` with `data`, with permissions `mode`.

    `fsync` makes the content durable before the rename (a config file a crash must not empty);
    `tmp_dir` holds the temporary file instead of `path`'s directory (it must be on the same
    filesystem), for directories whose listing must show complete files only.
    """
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
