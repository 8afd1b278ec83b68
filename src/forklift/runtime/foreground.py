"""Run one container in the foreground: stream its output, return how it ended."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from forklift.runtime.base import ContainerHandle, Runtime
from forklift.runtime.runc import RuncRuntime
from forklift.runtime.spec import ContainerSpec, ExitStatus


def run_foreground(spec: ContainerSpec, stream: TextIO = sys.stdout, runtime: Runtime | None = None,
                   grace: float = 10.0, on_start: Callable[[ContainerHandle], None] | None = None) -> ExitStatus:
    """Start `spec`, copy its stdout+stderr lines to `stream`, return its exit status.

    Ctrl-C (KeyboardInterrupt) stops the container (SIGTERM, `grace`, SIGKILL) and returns.
    """
    runtime = runtime or RuncRuntime()
    handle = runtime.start(spec)
    if on_start is not None:
        on_start(handle)
    try:
        for line in handle.logs(follow=True):
            stream.write(line + "\n")
            stream.flush()
        handle.wait()
    except KeyboardInterrupt:
        pass
    return handle.stop(grace)  # after an exit: only forgets the container
