"""The per-container supervisor: runs one runc container to the end and records how it ended.

    python -m forklift.runtime.supervisor STATE_DIR [READY_FD]

Started by `RuncRuntime.start` in its own session, so it outlives the forklift server. It becomes
a child subreaper, runs `runc run --detach` (the container's stdout/stderr are the log files in
STATE_DIR), reports "started" on READY_FD, and reaps the container's init
itself: runc's detached mode would lose the exit code. Before the container is deleted it reads
the memory cgroup's OOM-kill counter, then releases everything (bundle.teardown) and finally
writes exit.json.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path

from forklift.runtime import bundle, procs
from forklift.runtime.bundle import Layout
from forklift.runtime.runccli import RuncCli, last_error
from forklift.runtime.spec import ExitStatus

PR_SET_CHILD_SUBREAPER = 36


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
        self.cli = RuncCli.from_json(meta["runc"])

    def log(self, msg: str) -> None:
        with open(self.layout.supervisor_log, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")

    def report(self, data: dict) -> None:
        """Tell the starting server whether the container runs; once (the fd is closed after)."""
        fd, self.ready_fd = self.ready_fd, None
        if fd is None:
            return
        try:
            os.write(fd, (json.dumps(data) + "\n").encode())
        except OSError:
            pass  # the server went away; nobody is waiting
        finally:
            os.close(fd)

    def run(self) -> ExitStatus:
        try:
            return self._run()
        except BaseException as exc:
            return self.fail(f"supervisor error: {exc!r}")

    def _run(self) -> ExitStatus:
        layout, cid, cgroup = self.layout, self.meta["id"], self.meta["cgroup"]
        bundle.write_json(layout.supervisor_json, {"pid": os.getpid(), "start_time": procs.start_time(os.getpid())})
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

        with open(layout.stdout, "ab") as out, open(layout.stderr, "ab") as err:
            # One runc process instead of create + start; as the subreaper we still reap the init.
            rc = self.cli.run_detached(cid, layout.state_dir, layout.pid_file, layout.runc_log, out, err)
        if rc != 0:
            return self.fail(f"runc run failed: {last_error(layout.runc_log) or f'exit {rc}'}")
        pid = int(layout.pid_file.read_text())
        oom_before = bundle.cgroup_oom_kills(cgroup) or 0  # a fresh cgroup: 0 unless it was reused
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))  # pass a shutdown on
        self.report({"ok": True, "pid": pid})
        self.log(f"started {cid} pid {pid}")

        wait_status = _reap(pid)
        signal.signal(signal.SIGTERM, lambda *_: None)  # the pid is gone; finish the teardown
        kills = bundle.cgroup_oom_kills(cgroup)  # before teardown deletes the cgroup
        oom = kills is not None and kills > oom_before
        status = classify(wait_status, oom, bundle.read_json(layout.stop_json))
        self.log(f"exited {status}")
        self.finish(status)
        return status

    def fail(self, message: str) -> ExitStatus:
        status = ExitStatus(code=125, reason="error", message=message)
        self.log(message)
        self.finish(status)
        self.report({"ok": False, "error": message})
        return status

    def finish(self, status: ExitStatus) -> None:
        try:
            bundle.teardown(self.layout.state_dir)
        except Exception as exc:  # record the exit status even if something could not be released
            self.log(f"teardown failed: {exc!r}")
        bundle.write_json(self.layout.exit_json, status.to_json())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    # No signals are ignored here: ignored dispositions would be inherited by the container.
    # Being in a session of our own keeps the server's terminal signals away.
    ready_fd = int(argv[1]) if len(argv) > 1 else None
    Supervisor(Path(argv[0]).absolute(), ready_fd).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
