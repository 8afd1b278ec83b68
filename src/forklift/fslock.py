"""Advisory file locks (`flock`) shared by threads and processes.

A lock belongs to an open file description: two `open`s of the same path conflict even in one
process, and the kernel drops the lock when its last descriptor closes (the process ended or
crashed), so a lock file is never stale. Standard library only.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def open_lock_file(path: Path) -> int:
    """A descriptor for `path` (created 0600 when absent) that child processes do not inherit."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def acquire(fd: int, *, shared: bool = False, blocking: bool = True) -> bool:
    """Lock `fd` (exclusive, or shared with other shared holders). With blocking=False, returns False
    at once when another holder has it; otherwise waits and returns True."""
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    return True


POLL = 0.05  # how often a lock polled for (rather than waited on) is tried again


def acquire_polling(fd: int, abort: Callable[[], None], *, shared: bool = False, every: float = POLL) -> None:
    """Lock `fd`, trying again every `every` seconds rather than blocking in flock(2), and calling
    `abort()` between tries: it raises to give up. A thread blocked in flock could not be stopped
    until the holder lets go, however long that holder itself waits."""
    while not acquire(fd, shared=shared, blocking=False):
        abort()
        time.sleep(every)


@contextmanager
def locked(path: Path, *, shared: bool = False, blocking: bool = True,
           abort: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold a lock on `path` for the block. Yields True; False only with blocking=False when another
    holder has it (the block then runs without the lock). With `abort`, a blocking wait polls and
    calls it between tries (see `acquire_polling`)."""
    fd = open_lock_file(path)
    try:
        if abort is not None and blocking:
            acquire_polling(fd, abort, shared=shared)
            yield True
        else:
            yield acquire(fd, shared=shared, blocking=blocking)
    finally:
        os.close(fd)  # releases the lock
