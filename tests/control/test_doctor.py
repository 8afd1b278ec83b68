"""`forklift doctor`: leftovers planted by hand (a stray runc container labelled as forklift's, a
network namespace no lease names, an index entry of a vanished state directory, an overlay mount
no container uses, an abandoned content-store lease, a dead provider function's scratch
directory) are reported with where and why, and `--fix` removes them; a container the database
owns, a live lease and a live scratch directory are never touched, and `--fix` refuses while a
server holds the database's lease."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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

FORKLIFT = [sys.executable, "-m", "forklift"]


def doctor(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*FORKLIFT, "doctor", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FORKLIFT_HOME": str(home)})


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
    home = tmp_path / "home"
    home.mkdir()
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
    mount = overlay.Overlay.under(busybox_rootfs, home / "endpoints" / "e2" / "instances" / f"ep-mount-{tag}")
    overlay.mount(mount)
    store = BlobStore(settings.blobs_dir)
    abandoned = settings.blobs_dir / "leases" / f"{dead_pid()}-{tag}.lease"
    abandoned.write_text("")
    live_lease = store.lease()
    scratch = settings.tmp_dir / f"forklift-fn-{dead_pid()}-{tag}"
    scratch.mkdir(parents=True)
    live_scratch = settings.tmp_dir / f"forklift-fn-{os.getpid()}-{tag}"
    live_scratch.mkdir()
    yield {"home": home, "owned": owned, "stray": stray, "namespace": namespace, "index": index,
           "mount": mount.merged, "abandoned": abandoned, "live_lease": live_lease, "scratch": scratch,
           "live_scratch": live_scratch}
    live_lease.release()
    for handle in (owned, stray):
        handle.stop(grace=0.5)
    subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    index.unlink(missing_ok=True)
    overlay.unmount(mount)


def test_doctor_reports_each_leftover_with_where_and_why(planted):
    result = doctor(planted["home"])
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()

    def line_of(what: str, where: str) -> str:
        found = [line for line in lines if line.startswith(what) and where in line]
        assert len(found) == 1, (what, where, lines)
        return found[0]

    assert "no active training job or endpoint instance" in line_of("container", planted["stray"].id)
    assert "no network lease names it" in line_of("network namespace", planted["namespace"])
    assert "state directory" in line_of("index entry", str(planted["index"]))
    assert "no container the runtime knows uses it" in line_of("overlay mount", str(planted["mount"]))
    assert "ended without releasing it" in line_of("content-store lease", str(planted["abandoned"]))
    assert "process has ended" in line_of("temporary directory", str(planted["scratch"]))
    live = (planted["owned"].id, str(planted["live_scratch"]), planted["live_lease"].path.name)
    assert not [line for line in lines if any(name in line for name in live)], lines
    assert "forklift doctor --fix" in result.stderr


def test_doctor_fix_removes_the_leftovers_and_nothing_live(planted):
    home = planted["home"]
    result = doctor(home, "--fix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Removed" in result.stdout
    assert not planted["stray"].is_running()
    assert list(hostcheck.running(home)) == [planted["owned"].id]
    assert not (Path("/var/run/netns") / planted["namespace"]).exists()
    assert not planted["index"].exists()
    assert not overlay.is_mounted(planted["mount"])
    assert not planted["abandoned"].exists()
    assert not planted["scratch"].exists()
    # what is live stays as it was
    assert planted["owned"].is_running()
    assert planted["live_lease"].path.exists()
    assert planted["live_scratch"].is_dir()
    residue = hostcheck.residue(home, live=[planted["owned"].id])
    assert [line for line in residue if str(planted["live_scratch"]) not in line] == []
    again = doctor(home)
    assert again.returncode == 0, again.stdout + again.stderr


def test_doctor_fix_touches_nothing_while_a_server_holds_the_database(planted):
    settings = load_settings(planted["home"])
    with dblease.acquire(settings.database_url, holder="forklift serve pid 1 on a test"):
        result = doctor(planted["home"], "--fix")
    assert result.returncode == 1
    assert "while a forklift server runs" in result.stderr and "forklift server stop" in result.stderr
    assert planted["stray"].is_running()
    assert planted["scratch"].exists()
