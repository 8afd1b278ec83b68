"""`forklift doctor`: leftovers planted by hand (a stray runc container labelled as forklift's, a
network namespace no lease names, an index entry of a vanished state directory, an overlay mount
no container uses, an abandoned content-store lease, a dead provider function's scratch
directory) are reported with where and why, and `--fix` removes them; a container the database
owns (its home reached through a symlink), a live lease and a live scratch directory are never
touched, nothing younger than the settle time is judged, and `--fix` refuses while a server holds the
database's lease or is recorded live in server.json, and where the database holds no forklift state.
`--fix` acts machine-wide, so the assertions are on what was planted here alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fixtures import hostcheck
from forklift import dblease, labels
from forklift.config import load_settings
from forklift.control.inference.models import EndpointInstanceRow
from forklift.control.inference.store import InferenceStore
from forklift.images.content import BlobStore
from forklift.runtime import ContainerSpec, RuncRuntime, overlay
from forklift.runtime.runc import DEFAULT_STATE_ROOT
from forklift.serverfile import process_start, record_path

FORKLIFT = [sys.executable, "-m", "forklift"]
# A namespace's age is its nsfs inode's, which cannot be set back: the namespace planted here is taken
# as settled (that one alone: --fix acts machine-wide, on other tests' containers too).
SETTLED_NAMESPACE = """
import sys
from forklift.runtime import residue
planted, judged = sys.argv.pop(1), residue.namespace_settled
residue.namespace_settled = lambda name: name == planted or judged(name)
from forklift.cli import main
main()
"""


def doctor(home: Path, *args: str, namespace: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", SETTLED_NAMESPACE, namespace] if namespace else FORKLIFT
    return subprocess.run([*command, "doctor", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FORKLIFT_HOME": str(home), **(env or {})})


def settled(path: Path) -> None:
    """As if made before the settle time (`residue.SETTLE_SECONDS`)."""
    old = time.time() - 3600
    os.utime(path, (old, old))


def scratch_name(pid: int, tag: str, start: int | None = None) -> str:
    return f"forklift-fn-{pid}-{start if start is not None else process_start(pid)}-{tag}"


def sleeper(home: Path, rootfs: Path, name: str) -> ContainerSpec:
    return ContainerSpec(name=name, rootfs=rootfs, state_dir=home / "endpoints" / "e1" / "instances" / name,
                         entrypoint=["/bin/busybox", "sleep", "600"], network="isolated",
                         labels={labels.ENDPOINT: "e1", labels.VARIANT: "AllTraffic"})


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture
def planted(tmp_path, busybox_rootfs):
    """A home with one owned container and a leftover of each kind; everything removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("forklift doctor reads runc's and the kernel's state: needs root")
    (tmp_path / "real-home").mkdir()
    home = tmp_path / "home"  # through a symlink: mounts and runc name the resolved path
    home.symlink_to(tmp_path / "real-home")
    settings = load_settings(home)
    runtime = RuncRuntime()
    tag = uuid.uuid4().hex[:8]
    owned = runtime.start(sleeper(home, busybox_rootfs, f"ep-owned-{tag}"))
    InferenceStore(settings.database_url).add_instance(EndpointInstanceRow(
        container_name=owned.name, endpoint="e1", variant="AllTraffic", generation=1, address=owned.address,
        created_at=0.0))
    stray = runtime.start(sleeper(home, busybox_rootfs, f"ep-stray-{tag}"))
    namespace = f"forklift-{60000 + int(tag[:4], 16)}"  # past the /16 pool's 16384 leases: never leased
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    index = DEFAULT_STATE_ROOT / "containers" / f"forklift-gone-{tag}.json"
    index.write_text(json.dumps({"state_dir": str(tmp_path / "vanished")}))
    settled(index)
    mount = overlay.Overlay.under(busybox_rootfs, home / "endpoints" / "e2" / "instances" / f"ep-mount-{tag}")
    overlay.mount(mount)
    store = BlobStore(settings.blobs_dir)
    abandoned = settings.blobs_dir / "leases" / f"{dead_pid()}-{tag}.lease"
    abandoned.write_text("")
    live_lease = store.lease()
    scratch = settings.tmp_dir / scratch_name(dead_pid(), tag, start=1)
    scratch.mkdir(parents=True)
    live_scratch = settings.tmp_dir / scratch_name(os.getpid(), tag)
    live_scratch.mkdir()
    reused = settings.tmp_dir / scratch_name(os.getpid(), f"{tag}r", start=process_start(os.getpid()) + 1)
    reused.mkdir()  # our pid, but another process's start time: its maker ended and the pid was reused
    yield {"home": home, "owned": owned, "stray": stray, "namespace": namespace, "index": index,
           "mount": mount.merged, "abandoned": abandoned, "live_lease": live_lease, "scratch": scratch,
           "live_scratch": live_scratch, "reused": reused}
    live_lease.release()
    for handle in (owned, stray):
        handle.stop(grace=0.5)
    subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    index.unlink(missing_ok=True)
    overlay.unmount(mount)


def test_doctor_reports_each_leftover_with_where_and_why(planted):
    result = doctor(planted["home"], namespace=planted["namespace"])
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()

    def line_of(what: str, where: str) -> str:
        found = [line for line in lines if line.startswith(what) and where in line]
        assert len(found) == 1, (what, where, lines)
        return found[0]

    assert "no active training job or endpoint instance" in line_of("container", planted["stray"].id)
    assert "no network lease names it" in line_of("network namespace", planted["namespace"])
    assert "state directory" in line_of("index entry", str(planted["index"]))
    assert "no container the runtime knows uses it" in line_of("overlay mount", os.path.realpath(planted["mount"]))
    assert "ended without releasing it" in line_of("content-store lease", str(planted["abandoned"]))
    assert "process has ended" in line_of("temporary directory", str(planted["scratch"]))
    assert "process has ended" in line_of("temporary directory", str(planted["reused"]))
    live = (planted["owned"].name, str(planted["live_scratch"]), planted["live_lease"].path.name)
    assert not [line for line in lines if any(name in line for name in live)], lines
    assert "forklift doctor --fix" in result.stderr


def test_doctor_fix_removes_the_leftovers_and_nothing_live(planted):
    home = planted["home"]
    result = doctor(home, "--fix", namespace=planted["namespace"])
    assert "Removed" in result.stdout, result.stdout + result.stderr
    tags = (planted["stray"].name, planted["namespace"], planted["index"].name, planted["mount"].parent.name,
            planted["abandoned"].name, planted["scratch"].name, planted["reused"].name)
    failed = [line for line in result.stderr.splitlines() if any(tag in line for tag in tags)]
    assert failed == [], result.stderr
    assert not planted["stray"].is_running()
    assert list(hostcheck.running(home)) == [planted["owned"].id]
    assert not (Path("/var/run/netns") / planted["namespace"]).exists()
    assert not planted["index"].exists()
    assert not overlay.is_mounted(planted["mount"])
    assert not planted["abandoned"].exists()
    assert not planted["scratch"].exists()
    assert not planted["reused"].exists()
    # what is live stays as it was
    assert planted["owned"].is_running()
    assert os.path.ismount(home / "endpoints" / "e1" / "instances" / planted["owned"].name / "rootfs")
    assert planted["live_lease"].path.exists()
    assert planted["live_scratch"].is_dir()
    residue = hostcheck.residue(home, live=[planted["owned"].id])
    mine = [line for line in residue if any(tag in line for tag in (str(home.resolve()), str(home), *tags))]
    assert [line for line in mine if str(planted["live_scratch"]) not in line] == []
    again = doctor(home, namespace=planted["namespace"]).stdout.splitlines()
    assert [line for line in again if any(tag in line for tag in (planted["owned"].name, *tags))] == [], again


def test_doctor_does_not_judge_what_may_be_being_set_up_now(planted, tmp_path):
    """An index entry claimed just now (its state directory not made yet) and a fresh namespace are
    what a container being started looks like: not leftovers until the settle time has passed."""
    fresh = DEFAULT_STATE_ROOT / "containers" / f"forklift-{planted['stray'].name}-new.json"
    fresh.write_text(json.dumps({"state_dir": str(tmp_path / "being-made")}))
    try:
        lines = doctor(planted["home"]).stdout.splitlines()
    finally:
        fresh.unlink(missing_ok=True)
    assert [line for line in lines if fresh.name in line or planted["namespace"] in line] == [], lines
    assert [line for line in lines if str(planted["index"]) in line]  # the old one is judged


def test_doctor_fix_refuses_while_server_json_names_a_live_server(planted):
    """A server on another database (FORKLIFT_DATABASE_URL not set here) holds no lease doctor sees;
    its record in the home does."""
    home = planted["home"]
    record_path(home).write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": os.getpid(),
                                             "pid_start": process_start(os.getpid())}))
    result = doctor(home, "--fix", namespace=planted["namespace"])
    assert result.returncode == 1
    assert f"pid {os.getpid()}" in result.stderr and "forklift server stop" in result.stderr, result.stderr
    assert planted["stray"].is_running() and planted["owned"].is_running()
    assert planted["scratch"].exists() and (Path("/var/run/netns") / planted["namespace"]).exists()


def test_doctor_refuses_to_judge_containers_by_a_database_without_forklift_state(planted, tmp_path):
    other = tmp_path / "not-the-servers.db"
    for args in ((), ("--fix",)):
        result = doctor(planted["home"], *args, env={"FORKLIFT_DATABASE_URL": f"sqlite:///{other}"})
        assert result.returncode == 1
        assert "holds no forklift state" in result.stderr and "FORKLIFT_DATABASE_URL" in result.stderr, result.stderr
        assert not other.exists()
    assert planted["stray"].is_running() and planted["owned"].is_running()
    assert planted["scratch"].exists()


def test_doctor_fix_touches_nothing_while_a_server_holds_the_database(planted):
    settings = load_settings(planted["home"])
    with dblease.acquire(settings.database_url, holder="forklift serve pid 1 on a test"):
        result = doctor(planted["home"], "--fix")
    assert result.returncode == 1
    assert "while a forklift server runs" in result.stderr and "forklift server stop" in result.stderr
    assert planted["stray"].is_running()
    assert planted["scratch"].exists()
