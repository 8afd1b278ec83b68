"""The per-container supervisor: follows one runc container to the end and records how it ended.

`launcher.py` (started by `RuncRuntime.start` in its own session, so it outlives the forklift server)
becomes a child subreaper, runs `runc run --detach` (the container's stdout/stderr are the log files
in STATE_DIR), reports "started", and then hands over to `Supervisor.supervise`, which reaps the
container's init itself (runc's detached mode would lose the exit code), reads the memory cgroup's
OOM-kill counter before the container is deleted, releases everything (bundle.teardown) and finally
writes exit.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

from forklift.runtime import bundle
from forklift.runtime.bundle import Layout
from forklift.runtime.runccli import last_error
from forklift.runtime.spec import ExitStatus


def _reap(pid: int) -> int | None:
    """Wait for the container init (our child once `runc run --detach` has exited); its wait status."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return None
        if got == pid:
            return status


def classify(wait_status: int | None, oom: bool, stop: dict | None) -> ExitStatus:
    if wait_status is None:
        return ExitStatus(code=-1, oom_killed=oom, reason="lost", message="container init was not reaped")
    sig = os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None
    code = 128 + sig if sig else os.WEXITSTATUS(wait_status)
    if oom:
        reason = "oom-killed"
    elif stop:
        reason = "killed" if stop.get("signal") == "KILL" else "stopped"
    elif sig:
        reason = "signaled"
    else:
        reason = "completed" if code == 0 else "failed"
    return ExitStatus(code=code, oom_killed=oom, signal=sig, reason=reason)


class Supervisor:
    def __init__(self, state_dir: Path, ready_fd: int | None = None):
        self.layout = Layout(state_dir)
        self.ready_fd = ready_fd
        meta = bundle.read_json(self.layout.container_json)
        if meta is None:
            raise SystemExit(f"no container.json in {state_dir}")
        self.meta = meta

    def log(self, msg: str) -> None:
        with open(self.layout.supervisor_log, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")

    def report(self, data: dict) -> None:
        """Tell the starting server the container failed to start; once (the fd is closed after)."""
        fd, self.ready_fd = self.ready_fd, None
        if fd is None:
            return
        try:
            os.write(fd, (json.dumps(data) + "\n").encode())
        except OSError:
            pass  # the server went away; nobody is waiting
        finally:
            os.close(fd)

    def fail_to_start(self, code: int) -> ExitStatus:
        """`runc run` failed (the launcher started it): record why and tell the server."""
        return self.fail(f"runc run failed: {last_error(self.layout.runc_log) or f'exit {code}'}")

    def supervise(self, pid: int) -> ExitStatus:
        """The container's init `pid` runs (the launcher started it and reported it): reap it, record how it ended."""
        try:
            self.log(f"started {self.meta['id']} pid {pid}")
            wait_status = _reap(pid)
            signal.signal(signal.SIGTERM, lambda *_: None)  # the pid is gone; finish the teardown
            kills = bundle.cgroup_oom_kills(self.meta["cgroup"])  # before teardown deletes the cgroup
            refused = bundle.cgroup_refused_forks(self.meta["cgroup"]) or 0
            # The cgroup is created with the container (names are unique), so any OOM kill is its own.
            status = classify(wait_status, bool(kills), bundle.read_json(self.layout.stop_json))
            if refused:
                status = dataclasses.replace(status, refused_forks=refused)
            self.log(f"exited {status}")
            self.finish(status)
            return status
        except BaseException as exc:  # noqa: BLE001 - whatever stopped supervising, the exit is recorded
            return self.fail(f"supervisor error: {exc!r}")

    def fail(self, message: str) -> ExitStatus:
        status = ExitStatus(code=125, reason="error", message=message)
        self.log(message)
        self.finish(status)
        self.report({"ok": False, "error": message})
        return status

    def finish(self, status: ExitStatus) -> None:
        try:
            bundle.teardown(self.layout.state_dir)
        except Exception as exc:  # noqa: BLE001 - record the exit status even if something could not be released
            self.log(f"teardown failed: {exc!r}")
        bundle.write_json(self.layout.exit_json, status.to_json())
