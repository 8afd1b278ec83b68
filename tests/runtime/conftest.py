"""Runtime fixtures: real runc containers, as root.

Two test images are built from host files and cached under /tmp/forklift-test-images, keyed by a
hash of the host binaries they are made of:
- busybox: static /usr/bin/busybox with its applet symlinks, plus /etc/passwd and /etc/group;
- pyslim: busybox + the host's /usr/bin/python3.11, the shared libraries it and its extension
  modules load, all of glibc/libgcc/libstdc++, and the stdlib without tests and GUI modules.

Every container, overlay mount, network namespace, veth, iptables rule, address lease and cgroup
a test creates is removed when the test ends, whether it passed or not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from fixtures.imagetools import cached_build
from forklift.demo.rootfs import build_python_rootfs
from forklift.runtime import ContainerSpec, RuncRuntime, bundle, network, overlay

HERE = Path(__file__).parent
FIXTURE_VERSION = "2"  # bump when the images change
PY = "/usr/bin/python3.11"
CGROUP_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd")


def _can_run_containers() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("runc"):
        return "needs runc"
    if not Path("/usr/bin/busybox").exists():
        return "needs /usr/bin/busybox (busybox-static)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _can_run_containers()
    if reason is None:
        return
    needs = {"runtime", "busybox_rootfs", "pyslim_rootfs"}
    for item in items:
        if HERE in item.path.parents and needs & set(item.fixturenames):
            item.add_marker(pytest.mark.skip(reason=reason))


# -- images ------------------------------------------------------------------------------------
def _digest(*paths: str) -> str:
    h = hashlib.sha256(FIXTURE_VERSION.encode())
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def _install_busybox(root: Path) -> None:
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/usr/bin/busybox", root / "bin/busybox")
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")


def _build_pyslim(root: Path) -> None:
    build_python_rootfs(root)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    (root / "srv").mkdir()
    (root / "srv/index.html").write_text("hello from pyslim\n")


@pytest.fixture(scope="session")
def busybox_rootfs() -> Path:
    return cached_build("busybox", _digest("/usr/bin/busybox"), _install_busybox)


@pytest.fixture(scope="session")
def pyslim_rootfs() -> Path:
    if not Path(PY).exists():
        pytest.skip(f"needs the host's {PY}")
    return cached_build("pyslim", _digest("/usr/bin/busybox", PY, "/lib/x86_64-linux-gnu/libc.so.6"), _build_pyslim)


# -- runtime and cleanup -----------------------------------------------------------------------
class TestRuntime(RuncRuntime):
    """A RuncRuntime with its own runc --root and state root; remembers what it started."""

    __test__ = False

    def __init__(self, base: Path):
        super().__init__(state_root=base / "state", runc_root=base / "runc")
        self.base = base
        self.names: set[str] = set()
        self.state_dirs: set[Path] = set()

    def spec(self, rootfs: Path, **kw) -> ContainerSpec:
        name = kw.pop("name", None) or f"t{uuid.uuid4().hex[:10]}"
        self.names.add(name)
        state_dir = self.base / "containers" / name
        self.state_dirs.add(state_dir)
        kw.setdefault("network", "none")
        return ContainerSpec(name=name, rootfs=rootfs, state_dir=state_dir, **kw)

    def cleanup(self) -> list[str]:
        """Remove everything the tests' containers may have left; return what had been left."""
        left = []
        for c in self.cli.list():
            left.append(f"runc container {c['id']}")
            self.cli.kill(c["id"], "KILL", all=True)
            self.cli.delete(c["id"], force=True)
        for state_dir in self.state_dirs:
            layout = bundle.Layout(state_dir)
            if layout.container_json.exists() and not layout.released.exists():
                info = bundle.read_json(layout.supervisor_json)
                if info:
                    try:
                        os.kill(info["pid"], 9)
                    except OSError:
                        pass
                left.append(f"unreleased {state_dir.name}")
                bundle.teardown(state_dir)
            merged = state_dir / "rootfs"
            if overlay.is_mounted(merged):
                left.append(f"overlay {merged}")
                overlay.unmount(overlay.Overlay(merged, state_dir / "upper", state_dir / "work", merged))
        ids = {f"forklift-{n}" for n in self.names}
        for lease in self.pool.leases():
            if lease.owner in ids:
                left.append(f"lease {lease.subnet}")
                network.teardown(network.IsolatedNetwork(lease), self.pool)
        rules = subprocess.run(["iptables", "-w", "-S", network.CHAIN], capture_output=True, text=True).stdout
        for rule in rules.splitlines():
            if any(f"forklift:{i}" in rule for i in ids):
                left.append(f"iptables {rule}")
                subprocess.run(["iptables", "-w", "-D", *shlex.split(rule)[1:]], capture_output=True)
        for name in self.names:
            for ctrl in CGROUP_CONTROLLERS:
                path = Path("/sys/fs/cgroup") / ctrl / "forklift" / name
                if path.exists():
                    left.append(f"cgroup {path}")
                    try:
                        path.rmdir()
                    except OSError:
                        pass
        return left


@pytest.fixture
def runtime(tmp_path_factory) -> TestRuntime:
    rt = TestRuntime(tmp_path_factory.mktemp("rt"))
    yield rt
    left = rt.cleanup()
    assert not left, f"left behind: {left}"


@pytest.fixture
def host_listener():
    """Start TCP servers on 0.0.0.0:<free port> that answer 'hi'; yields a factory returning the port."""
    servers = []

    def start() -> int:
        srv = socket.create_server(("0.0.0.0", 0))
        srv.settimeout(0.2)
        servers.append(srv)

        def serve():
            while srv.fileno() != -1:
                try:
                    conn, _ = srv.accept()
                except (TimeoutError, OSError):
                    continue
                with conn:
                    conn.sendall(b"hi\n")

        threading.Thread(target=serve, daemon=True).start()
        return srv.getsockname()[1]

    yield start
    for srv in servers:
        srv.close()


@pytest.fixture(scope="session")
def host_address() -> str:
    """An address of this host other than loopback."""
    out = subprocess.run(["ip", "-4", "-j", "route", "get", "1.1.1.1"], capture_output=True, text=True).stdout
    try:
        return json.loads(out)[0]["prefsrc"]
    except (ValueError, IndexError, KeyError):
        return "10.213.255.254"
