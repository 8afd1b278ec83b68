"""The runtime protocol: what the control layer may ask of any container backend."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from forklift.runtime.errors import ContainerRuntimeError
from forklift.runtime.spec import ContainerSpec, ExitStatus


def skip_released(f: BinaryIO) -> None:
    """Move `f`, a container's output file, to its first byte still on disk: a log pump gives the
    blocks of what it has copied back (a hole that reads as zeros), and a reader starts after it."""
    try:
        f.seek(os.lseek(f.fileno(), 0, os.SEEK_DATA))
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # nothing but a hole, or empty
            f.seek(0, os.SEEK_END)


class ContainerError(ContainerRuntimeError, RuntimeError):
    """A container could not be started or managed."""


class ContainerExists(ContainerError):
    pass


class ContainerStartError(ContainerError):
    def __init__(self, message: str, status: ExitStatus | None = None):
        super().__init__(message)
        self.status = status


@runtime_checkable
class ContainerHandle(Protocol):
    name: str
    address: str | None  # the container's IP (isolated network), else None
    pid: int | None  # host pid of the container's init
    stdout_path: Path
    stderr_path: Path

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        """The exit status once the container has ended and been released; None on timeout."""
        ...

    def stop(self, grace: float = 10.0) -> ExitStatus:
        """SIGTERM, `grace` seconds, SIGKILL to every process, delete, release network and overlay."""
        ...

    def is_running(self) -> bool: ...

    def logs(self, follow: bool = False) -> Iterator[str]:
        """stdout and stderr lines (without newline); with `follow`, until the container ends."""
        ...


@runtime_checkable
class Runtime(Protocol):
    def start(self, spec: ContainerSpec) -> ContainerHandle: ...

    def adopt(self, name: str) -> ContainerHandle | None:
        """A container started by an earlier process (running, or ended but not yet stopped)."""
        ...

    def list(self) -> list[str]:
        """Names of the containers this runtime knows and that have not been stopped."""
        ...
