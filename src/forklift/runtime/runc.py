"""The runc backend: containers run under a detached supervisor, so they outlive the server.

    rt = RuncRuntime()                 # state in /run/forklift, runc's default --root
    h = rt.start(spec)                 # returns once the container's process is running
    for line in h.logs(follow=True): ...
    status = h.wait()                  # ExitStatus(code, oom_killed, signal, reason)
    rt2 = RuncRuntime(); h2 = rt2.adopt(spec.name)   # after a server restart

The runtime keeps an index of its containers (state_root/containers/<id>.json -> state dir), so
a restarted server can still collect the exit status of a container that ended while it was
down. `stop()` removes the index entry.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import forklift
from forklift.runtime import bundle, procs
from forklift.runtime.base import ContainerExists, ContainerStartError, skip_released
from forklift.runtime.bundle import Layout
from forklift.runtime.network import AddressPool
from forklift.runtime.runccli import RuncCli
from forklift.runtime.spec import CONTAINER_PREFIX, ContainerSpec, ExitStatus, container_id, name_of

DEFAULT_STATE_ROOT = Path("/run/forklift")
START_TIMEOUT = 60.0
KILL_TIMEOUT = 10.0
POLL = 0.05
LAUNCHER = str(Path(__file__).with_name("launcher.py"))  # run by path: no package import on the start path


class RuncHandle:
    def __init__(self, meta: dict, proc: subprocess.Popen | None = None):
        self._meta = meta
        self._proc = proc  # the supervisor, when this process started it
        self.id: str = meta["id"]
        self.name: str = meta["name"]
        self.state_dir = Path(meta["state_dir"])
        self.layout = Layout(self.state_dir)
        self.address: str | None = meta.get("address")
        self.gateway: str | None = meta.get("gateway")
        self.stdout_path = self.layout.stdout
        self.stderr_path = self.layout.stderr
        self.cli = RuncCli.from_json(meta["runc"])
        self._on_stop = None

    def __repr__(self) -> str:
        return f"<RuncHandle {self.id} pid={self.pid} address={self.address}>"

    @property
    def pid(self) -> int | None:
        try:
            return int(self.layout.pid_file.read_text())
        except (OSError, ValueError):
            return None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._meta.get("labels") or {})

    @property
    def created(self) -> float | None:
        return self._meta.get("created")

    @property
    def log_paths(self) -> tuple[Path, Path]:
        return self.stdout_path, self.stderr_path

    # -- the supervisor -------------------------------------------------------------------
    def _supervisor_alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        info = bundle.read_json(self.layout.supervisor_json)
        return bool(info) and procs.alive(info["pid"], info.get("start_time"))

    def _wait_supervisor(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking as soon as the supervisor exits."""
        if self._proc is not None:
            try:
                self._proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                pass
            return
        info = bundle.read_json(self.layout.supervisor_json)
        try:
            fd = os.pidfd_open(info["pid"]) if info else None
        except OSError:
            fd = None
        if fd is None:
            time.sleep(min(seconds, POLL))
            return
        try:
            select.select([fd], [], [], seconds)
        finally:
            os.close(fd)

    def _container_running(self) -> bool:
        state = self.cli.state(self.id)
        return bool(state and state.get("status") in ("running", "created", "paused"))

    def _lost(self, deadline: float | None) -> ExitStatus | None:
        """The supervisor died without writing exit.json: once the container is gone, release it."""
        while self._container_running():
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
        return self._record(ExitStatus(code=-1, reason="lost", message="supervisor died; exit code unknown"))

    def _record(self, status: ExitStatus) -> ExitStatus:
        bundle.teardown(self.state_dir)
        if not self.layout.exit_json.exists():
            bundle.write_json(self.layout.exit_json, status.to_json())
        return bundle.read_exit(self.layout) or status

    # -- the protocol ---------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = bundle.read_exit(self.layout)
            if status is not None:
                return status
            if not self._supervisor_alive():
                return bundle.read_exit(self.layout) or self._lost(deadline)
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            self._wait_supervisor(min(left, 1.0))

    def is_running(self) -> bool:
        if self.layout.exit_json.exists():
            return False
        return self._supervisor_alive() or self._container_running()

    def stop(self, grace: float = 10.0) -> ExitStatus:
        status = bundle.read_exit(self.layout)
        if status is None and self.is_running():
            bundle.write_json(self.layout.stop_json, {"signal": "TERM", "time": time.time()})
            self.cli.kill(self.id, "TERM")
            status = self.wait(grace)
            if status is None:
                bundle.write_json(self.layout.stop_json, {"signal": "KILL", "time": time.time()})
                self.cli.kill(self.id, "KILL", all=True)
                status = self.wait(KILL_TIMEOUT)
        if status is None:  # it would not die, or nobody is left to record it
            self.cli.delete(self.id, force=True)
            status = self._record(ExitStatus(code=-1, reason="lost", message="container did not stop in time"))
        bundle.teardown(self.state_dir)  # no-op when the supervisor already released everything
        if self._on_stop:
            self._on_stop(self.id)
        return status

    def logs(self, follow: bool = False) -> Iterator[str]:
        files = [open(self.stdout_path, "rb"), open(self.stderr_path, "rb")]
        for f in files:
            skip_released(f)
        partial = [b"", b""]
        try:
            while True:
                ended = not follow or not self.is_running()
                got = False
                for i, f in enumerate(files):
                    chunk = f.read(1 << 16)
                    if not chunk:
                        continue
                    got = True
                    *lines, partial[i] = (partial[i] + chunk).split(b"\n")
                    for line in lines:
                        yield line.decode(errors="replace")
                if got:
                    continue
                if ended:
                    for rest in partial:
                        if rest:
                            yield rest.decode(errors="replace")
                    return
                self._wait_supervisor(0.1)
        finally:
            for f in files:
                f.close()


class RuncRuntime:
    """Runs containers with runc.

    `state_root` holds the index of this runtime's containers; `runc_root` is runc's --root
    (default /run/runc); `pool` leases the /30s (default: the machine-wide table in
    /run/forklift/network, shared by every forklift process).
    """

    def __init__(self, state_root: Path = DEFAULT_STATE_ROOT, runc: str = "runc", runc_root: Path | None = None,
                 pool: AddressPool | None = None, python: str = sys.executable):
        self.state_root = Path(state_root)
        self.cli = RuncCli(runc, runc_root)
        self.pool = pool or AddressPool()
        self.python = python
        self.index_dir = self.state_root / "containers"

    # -- index of containers ------------------------------------------------------------
    def _index(self, cid: str) -> Path:
        return self.index_dir / f"{cid}.json"

    def _claim(self, spec: ContainerSpec) -> None:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        entry = self._index(spec.container_id)
        for _ in range(2):
            try:
                fd = os.open(entry, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                old = self.adopt(spec.name)
                if old is not None and (old.is_running() or self.cli.state(old.id) is not None):
                    raise ContainerExists(f"container {spec.container_id} exists") from None
                entry.unlink(missing_ok=True)  # ended earlier and never stopped: take the name over
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"state_dir": str(spec.state_dir)}))
            return
        raise ContainerExists(f"container {spec.container_id} is being created by another process")

    def _forget(self, cid: str) -> None:
        self._index(cid).unlink(missing_ok=True)

    def _handle(self, meta: dict, proc: subprocess.Popen | None = None) -> RuncHandle:
        handle = RuncHandle(meta, proc)
        handle._on_stop = self._forget
        return handle

    # -- the protocol ---------------------------------------------------------------------
    def start(self, spec: ContainerSpec) -> RuncHandle:
        # runc refuses a rootfs reached through a symlink, and the kernel's mount table names the resolved
        # path: a FORKLIFT_HOME with a symlink or `..` in it is resolved once, here.
        spec.state_dir = Path(os.path.realpath(spec.state_dir))
        if self.cli.exists(spec.container_id):
            raise ContainerExists(f"runc already has a container {spec.container_id}")
        self._claim(spec)
        try:
            meta = bundle.prepare(spec, self.cli, self.pool)
        except BaseException:
            self._forget(spec.container_id)
            raise
        layout = Layout(spec.state_dir)
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        src = str(Path(forklift.__file__).parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        try:
            with open(layout.supervisor_log, "ab") as log:
                proc = subprocess.Popen(
                    [self.python, "-S", LAUNCHER, str(spec.state_dir), str(write_fd), self.cli.binary,
                     self.cli.root or "-", spec.container_id],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write_fd,),
                    start_new_session=True, env=env, cwd="/")
        except BaseException:
            os.close(read_fd)
            bundle.teardown(spec.state_dir, delete=False)
            self._forget(spec.container_id)
            raise
        finally:
            os.close(write_fd)
        handle = self._handle(meta, proc)
        reply = self._read_ready(read_fd)
        if not reply.get("ok"):
            status = handle.stop(grace=1.0)  # usually only collects what the supervisor recorded
            raise ContainerStartError(reply.get("error") or "supervisor exited before the container started",
                                      status)
        return handle

    @staticmethod
    def _read_ready(fd: int) -> dict:
        data = b""
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while b"\n" not in data and (left := deadline - time.monotonic()) > 0:
                if not select.select([fd], [], [], left)[0]:
                    break
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        try:
            return json.loads(data.split(b"\n")[0]) if data else {}
        except ValueError:
            return {}

    def adopt(self, name: str) -> RuncHandle | None:
        cid = container_id(name)
        index = bundle.read_json(self._index(cid))
        state_dirs = [index["state_dir"]] if index else []
        state_dirs += [c.get("bundle") for c in self.cli.list() if c.get("id") == cid and c.get("bundle")]
        for state_dir in state_dirs:
            meta = bundle.read_json(Layout(Path(state_dir)).container_json)
            if meta and meta.get("id") == cid:
                return self._handle(meta)
        return None

    def list(self) -> list[str]:
        names = {name_of(c["id"]) for c in self.cli.list() if c.get("id", "").startswith(CONTAINER_PREFIX)}
        if self.index_dir.is_dir():
            names.update(name_of(p.stem) for p in self.index_dir.glob(f"{CONTAINER_PREFIX}*.json"))
        return sorted(names)
