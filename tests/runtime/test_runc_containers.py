"""Real runc containers from a busybox rootfs (root only)."""

from __future__ import annotations

import io
import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from forklift.runtime import (
    ContainerExists,
    ContainerHandle,
    ContainerStartError,
    Mount,
    RuncRuntime,
    Runtime,
    SpecError,
    run_foreground,
)
from forklift.runtime.overlay import is_mounted


def run(runtime, rootfs, timeout=20, **kw):
    handle = runtime.start(runtime.spec(rootfs, **kw))
    status = handle.wait(timeout)
    assert status is not None, "container did not finish"
    return status, list(handle.logs()), handle


def sh(script: str) -> dict:
    return {"entrypoint": ["/bin/sh", "-c"], "args": [script]}


def snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    st = os.lstat(root)
    out["."] = (st.st_mode, st.st_mtime_ns)
    return out


def test_args_env_workdir_and_exit_code(runtime, busybox_rootfs):
    status, lines, _ = run(runtime, busybox_rootfs, **sh('echo "$FOO $BAR"; pwd; echo oops >&2; exit 7'),
                           env={"FOO": "foo"}, image_config={"Env": ["BAR=image", "FOO=image"]}, workdir="/opt/ml/code")
    assert status.code == 7 and status.reason == "failed" and not status.oom_killed and status.signal is None
    assert lines == ["foo image", "/opt/ml/code", "oops"]


def test_image_entrypoint_and_cmd_are_merged(runtime, busybox_rootfs):
    image = {"Entrypoint": ["/bin/echo", "entry"], "Cmd": ["default"], "WorkingDir": "/etc"}
    _, lines, _ = run(runtime, busybox_rootfs, image_config=image)
    assert lines == ["entry default"]
    _, lines, _ = run(runtime, busybox_rootfs, image_config=image, args=["override"])
    assert lines == ["entry override"]
    status, lines, _ = run(runtime, busybox_rootfs, image_config=image, entrypoint=["/bin/sh", "-c", "pwd; exit 0"])
    assert lines == ["/etc"] and status.code == 0 and status.reason == "completed"


def test_user_from_the_image_passwd(runtime, busybox_rootfs):
    _, lines, _ = run(runtime, busybox_rootfs, **sh("id -u; id -g; id -G"), user="app")
    assert lines == ["1000", "1000", "1000 2000"]


def test_ro_and_rw_mounts(runtime, busybox_rootfs, tmp_path):
    data, model = tmp_path / "data", tmp_path / "model"
    data.mkdir()
    model.mkdir()
    (data / "train.csv").write_text("1,2\n")
    script = "cat /in/train.csv; touch /in/x 2>/dev/null || echo ro-refused; echo saved > /out/model.txt"
    status, lines, _ = run(runtime, busybox_rootfs, **sh(script),
                           mounts=[Mount(data, "/in", read_only=True), Mount(model, "/out")])
    assert status.code == 0
    assert lines == ["1,2", "ro-refused"]
    assert (model / "model.txt").read_text() == "saved\n"
    assert not (data / "x").exists()


def test_the_rootfs_cache_is_never_modified(runtime, busybox_rootfs):
    before = snapshot(busybox_rootfs)
    script = "echo x > /etc/new; echo y > /bin/busybox-copy; rm /bin/ls; mkdir -p /var/lib/thing; pwd"
    status, lines, handle = run(runtime, busybox_rootfs, **sh(script), workdir="/brand/new/dir")
    assert status.code == 0 and lines == ["/brand/new/dir"]
    assert snapshot(busybox_rootfs) == before
    assert not is_mounted(handle.state_dir / "rootfs") and not (handle.state_dir / "upper").exists()


def test_timeout_then_stop_escalates_to_kill(runtime, busybox_rootfs):
    handle = runtime.start(runtime.spec(busybox_rootfs, **sh("trap '' TERM; echo ready; sleep 100")))
    assert handle.is_running()
    assert handle.wait(timeout=0.3) is None  # the caller's timeout
    t0 = time.monotonic()
    status = handle.stop(grace=1.0)
    took = time.monotonic() - t0
    assert (status.code, status.signal, status.reason) == (137, 9, "killed")
    assert 1.0 <= took < 4.0
    assert not handle.is_running()
    assert runtime.cli.state(handle.id) is None


def test_stop_of_a_term_handling_process_is_quick(runtime, busybox_rootfs):
    handle = runtime.start(runtime.spec(busybox_rootfs, **sh("trap 'exit 143' TERM; echo ready; sleep 100 & wait")))
    assert next(handle.logs(follow=True)) == "ready"  # the trap is installed
    t0 = time.monotonic()
    status = handle.stop(grace=10.0)
    assert time.monotonic() - t0 < 2.0
    assert (status.code, status.reason) == (143, "stopped")


def test_memory_limit_oom_kill_is_reported(runtime, busybox_rootfs):
    status, _, _ = run(runtime, busybox_rootfs, **sh("dd if=/dev/zero of=/dev/null bs=200M count=1"),
                       memory_bytes=64 << 20)
    assert status.oom_killed and status.code == 137 and status.reason == "oom-killed"
    status, _, _ = run(runtime, busybox_rootfs, **sh("dd if=/dev/zero of=/dev/null bs=20M count=1"),
                       memory_bytes=64 << 20)
    assert status.code == 0 and not status.oom_killed


def test_limits_are_visible_in_the_containers_cgroup(runtime, busybox_rootfs):
    script = ("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
              "/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ulimit -n")
    _, lines, _ = run(runtime, busybox_rootfs, **sh(script), cpus=0.5, memory_bytes=128 << 20, pids_limit=64)
    assert lines[:4] == ["50000", "100000", str(128 << 20), "64"]
    assert int(lines[4]) > 0


def test_logs_stream_while_running(runtime, busybox_rootfs):
    handle = runtime.start(runtime.spec(busybox_rootfs, **sh("for i in 1 2 3; do echo line$i; sleep 0.3; done")))
    seen = []
    for line in handle.logs(follow=True):
        seen.append((line, handle.is_running()))
    assert [line for line, _ in seen] == ["line1", "line2", "line3"]
    assert seen[0][1], "the first line arrived only after the container ended"
    assert handle.wait(5).code == 0
    handle.stop()


def test_start_failure_is_reported_and_released(runtime, busybox_rootfs):
    spec = runtime.spec(busybox_rootfs, entrypoint=["/no/such/binary"], network="isolated")
    with pytest.raises(ContainerStartError, match="no/such/binary") as exc:
        runtime.start(spec)
    assert exc.value.status is not None and exc.value.status.reason == "error"
    assert spec.name not in runtime.list()


def test_a_name_is_used_once(runtime, busybox_rootfs):
    spec = runtime.spec(busybox_rootfs, **sh("sleep 30"))
    handle = runtime.start(spec)
    try:
        with pytest.raises(ContainerExists):
            runtime.start(runtime.spec(busybox_rootfs, name=spec.name, **sh("true")))
    finally:
        handle.stop(grace=0.2)
    status, _, _ = run(runtime, busybox_rootfs, name=spec.name, **sh("exit 0"))  # free again
    assert status.code == 0


def test_a_fresh_runtime_adopts_a_container_of_an_exited_process(runtime, busybox_rootfs):
    spec = runtime.spec(busybox_rootfs, **sh("echo started; sleep 1.5; echo done; exit 3"))
    starter = textwrap.dedent(f"""
        from pathlib import Path
        from forklift.runtime import ContainerSpec, RuncRuntime
        rt = RuncRuntime(state_root=Path({str(runtime.state_root)!r}), runc_root=Path({str(runtime.cli.root)!r}))
        h = rt.start(ContainerSpec(name={spec.name!r}, rootfs=Path({str(busybox_rootfs)!r}),
                                   state_dir=Path({str(spec.state_dir)!r}), entrypoint={spec.entrypoint!r},
                                   args={spec.args!r}, network="isolated"))
        print(h.pid)
    """)
    out = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr  # the "server" is gone; its supervisor lives on
    fresh = RuncRuntime(state_root=runtime.state_root, runc_root=runtime.cli.root)
    assert spec.name in fresh.list()
    handle = fresh.adopt("forklift-" + spec.name)
    assert handle is not None and handle.pid == int(out.stdout)
    assert handle.is_running() and handle.address and handle.address.startswith("10.213.")
    status = handle.wait(10)
    assert status.code == 3 and status.reason == "failed"
    assert list(handle.logs()) == ["started", "done"]
    assert fresh.adopt(spec.name).wait(0) == status  # still collectable until stopped
    handle.stop()
    assert spec.name not in fresh.list() and fresh.adopt(spec.name) is None


def test_run_foreground_streams_and_returns_the_status(runtime, busybox_rootfs):
    out = io.StringIO()
    status = run_foreground(runtime.spec(busybox_rootfs, **sh("echo one; echo two >&2; exit 4")), out,
                            runtime=runtime)
    assert status.code == 4
    assert sorted(out.getvalue().splitlines()) == ["one", "two"]


def test_the_backend_satisfies_the_protocol(runtime, busybox_rootfs):
    handle = runtime.start(runtime.spec(busybox_rootfs, **sh("true")))
    assert isinstance(runtime, Runtime) and isinstance(handle, ContainerHandle)
    assert handle.log_paths == (handle.state_dir / "stdout.log", handle.state_dir / "stderr.log")
    assert handle.stop().code == 0


def test_run_foreground_stops_on_ctrl_c(runtime, busybox_rootfs):
    class Interrupting(io.StringIO):
        def write(self, s):
            super().write(s)
            raise KeyboardInterrupt

    status = run_foreground(runtime.spec(busybox_rootfs, **sh("echo hi; sleep 100")), Interrupting(),
                            runtime=runtime, grace=0.3)
    assert status.reason == "killed" and status.code == 137


def test_a_bad_spec_leaves_nothing_behind(runtime, busybox_rootfs, tmp_path):
    with pytest.raises(SpecError, match="no command"):
        runtime.start(runtime.spec(busybox_rootfs, network="isolated"))
    with pytest.raises(OSError, match="rootfs not found"):
        runtime.start(runtime.spec(tmp_path / "missing", **sh("true")))
    assert runtime.list() == []


def test_a_killed_supervisor_still_lets_stop_clean_up(runtime, busybox_rootfs):
    handle = runtime.start(runtime.spec(busybox_rootfs, network="isolated", **sh("sleep 100")))
    supervisor = json.loads((handle.state_dir / "supervisor.json").read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)
    assert handle.wait(0.3) is None  # the container outlives its supervisor
    assert handle.is_running()
    status = handle.stop(grace=0.2)
    assert status.reason == "lost" and status.code == -1
    assert not handle.is_running()


def test_start_latency(runtime, busybox_rootfs):
    """Median time from start() to a running container, and to its exit status (printed with -s)."""
    for network in ("none", "isolated"):
        started, finished = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            handle = runtime.start(runtime.spec(busybox_rootfs, entrypoint=["/bin/true"], network=network))
            started.append(time.perf_counter() - t0)
            assert handle.wait(10).code == 0
            finished.append(time.perf_counter() - t0)
        print(f"{network}: start {statistics.median(started) * 1000:.0f} ms, "
              f"exit status {statistics.median(finished) * 1000:.0f} ms (median of 5)")
        assert statistics.median(started) < 2.0
