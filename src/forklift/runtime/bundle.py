"""A container's state dir: what is in it, how it is set up, and how it is released.

    state_dir/
      container.json   what was set up (id, runc, overlay, network, cgroup); read by adopt/teardown
      config.json      the OCI runtime config (state_dir is the runc bundle)
      rootfs/ upper/ work/   overlay: merged root, container writes, overlay scratch
      stdout.log stderr.log  the container's output
      runc.log supervisor.log supervisor.json pid
      stop.json        written by stop(): which signal was sent last
      exit.json        written once everything is released: how the container ended

`prepare` and `teardown` are the only places that acquire and release host resources, so the
supervisor, `stop()` and a restarted server all release them the same way; teardown is
idempotent and serialised by a lock file.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from forklift.atomicfile import write_atomically
from forklift.fslock import locked
from forklift.runtime.runccli import RuncCli
from forklift.runtime.spec import ExitStatus

if TYPE_CHECKING:
    from forklift.runtime.network import AddressPool
    from forklift.runtime.spec import ContainerSpec

# network, ocispec and overlay are imported where they are used: the per-container supervisor
# imports this module on the container's start path and needs none of them until teardown.

CGROUP_ROOT = Path("/sys/fs/cgroup")
HOST_ALIAS = "host.forklift.internal"  # the gateway of an isolated container, in its /etc/hosts
GATEWAY_ENV = "FORKLIFT_HOST_GATEWAY"  # ... and in its environment


class Layout:
    """The paths inside one container's state dir."""

    def __init__(self, state_dir: Path):
        d = self.state_dir = Path(state_dir)
        self.container_json = d / "container.json"
        self.config_json = d / "config.json"
        self.stdout = d / "stdout.log"
        self.stderr = d / "stderr.log"
        self.runc_log = d / "runc.log"
        self.supervisor_log = d / "supervisor.log"
        self.supervisor_json = d / "supervisor.json"
        self.pid_file = d / "pid"
        self.stop_json = d / "stop.json"
        self.exit_json = d / "exit.json"
        self.lock = d / ".lock"
        self.released = d / ".released"

    def stale(self) -> list[Path]:
        """Files of an earlier run in the same state dir that must not be mistaken for this one's."""
        return [self.exit_json, self.stop_json, self.pid_file, self.released, self.supervisor_json,
                self.stdout, self.stderr, self.runc_log, self.supervisor_log]


def write_json(path: Path, data: dict) -> None:
    """Atomically: readers never see a half-written file."""
    write_atomically(path, json.dumps(data, indent=1).encode())


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_exit(layout: Layout) -> ExitStatus | None:
    data = read_json(layout.exit_json)
    return ExitStatus.from_json(data) if data else None


def prepare(spec: ContainerSpec, cli: RuncCli, pool: AddressPool) -> dict:
    """Mount the overlay, set up the network, write config.json and container.json."""
    from forklift.runtime import network, ocispec, overlay
    from forklift.runtime.spec import NetworkMode

    layout = Layout(spec.state_dir)
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    for path in layout.stale():
        path.unlink(missing_ok=True)
    for path in (layout.stdout, layout.stderr):
        path.touch()
    ov = overlay.Overlay.under(spec.rootfs, spec.state_dir)
    meta = {
        "id": spec.container_id, "name": spec.name, "state_dir": str(spec.state_dir),
        "rootfs": str(spec.rootfs), "runc": cli.to_json(), "cgroup": ocispec.cgroups_path(spec.name),
        "network": str(spec.network), "address": None, "isolated": None,
        "pool": {"table": str(pool.table), "pool": str(pool.pool)},
        "overlay": {"lower": str(ov.lower), "upper": str(ov.upper), "work": str(ov.work), "merged": str(ov.merged)},
        "labels": dict(spec.labels), "created": time.time(),
    }
    write_json(layout.container_json, meta)  # first, so a failed setup can still be torn down
    try:
        overlay.unmount(ov)  # whatever a crashed earlier run in this state dir left
        overlay.mount(ov)
        netns_path = None
        if spec.network == NetworkMode.ISOLATED:
            net = network.setup_isolated(spec.container_id, spec.allowed_host_ports, pool)
            meta["isolated"] = net.to_json()
            meta["address"] = net.lease.address
            meta["gateway"] = net.lease.gateway
            netns_path = net.lease.netns_path
            write_json(layout.container_json, meta)
        if spec.network != NetworkMode.HOST:
            write_etc_hosts(ov.merged, ocispec.hostname(spec), meta["address"], meta.get("gateway"))
        extra_env = {GATEWAY_ENV: meta["gateway"]} if meta.get("gateway") else {}
        config = ocispec.build_config(spec, ov.merged, netns_path=netns_path, extra_env=extra_env)
        write_json(layout.config_json, config)
    except BaseException:
        teardown(spec.state_dir, delete=False)
        raise
    return meta


def write_etc_hosts(merged: Path, hostname: str, address: str | None, gateway: str | None) -> None:
    """/etc/hosts in the container's upper layer: itself, and the host as host.forklift.internal."""
    etc = merged / "etc"
    if etc.is_symlink():
        return  # never write through a link that could point into the host
    etc.mkdir(exist_ok=True)
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{address or '127.0.1.1'}\t{hostname}"]
    if gateway:
        lines.append(f"{gateway}\t{HOST_ALIAS}")
    hosts = etc / "hosts"
    if hosts.is_symlink() or hosts.exists():
        hosts.unlink()
    fd = os.open(hosts, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")


@contextmanager
def _locked(layout: Layout):
    with locked(layout.lock):
        yield


def teardown(state_dir: Path, delete: bool = True) -> None:
    """Delete the runc container, unmount the overlay, remove the network. Idempotent."""
    from forklift.runtime import network, overlay
    from forklift.runtime.network import AddressPool, IsolatedNetwork

    layout = Layout(Path(state_dir))
    meta = read_json(layout.container_json)
    if meta is None:
        return
    with _locked(layout):
        if layout.released.exists():
            return
        if delete:
            cli = RuncCli.from_json(meta["runc"])
            if cli.state(meta["id"]) is not None:
                cli.delete(meta["id"], force=True)
        ov = meta["overlay"]
        overlay.unmount(overlay.Overlay(Path(ov["lower"]), Path(ov["upper"]), Path(ov["work"]), Path(ov["merged"])))
        pool = AddressPool(Path(meta["pool"]["table"]), meta["pool"]["pool"])
        if meta.get("isolated"):
            network.teardown(IsolatedNetwork.from_json(meta["isolated"]), pool)
        elif meta.get("network") == "isolated":  # set up by a process killed before it recorded the lease
            network.release_owner(meta["id"], pool)
        layout.released.touch()


def cgroup_oom_kills(cgroup: str) -> int | None:
    """How many processes the kernel OOM-killed in the container's memory cgroup (v1 or v2)."""
    rel = cgroup.lstrip("/")
    return _cgroup_event(((CGROUP_ROOT / "memory" / rel / "memory.oom_control", "oom_kill"),
                          (CGROUP_ROOT / rel / "memory.events", "oom_kill")))


def cgroup_refused_forks(cgroup: str) -> int | None:
    """How many forks (or threads) the container's pids limit refused (v1 or v2)."""
    rel = cgroup.lstrip("/")
    return _cgroup_event(((CGROUP_ROOT / "pids" / rel / "pids.events", "max"),
                          (CGROUP_ROOT / rel / "pids.events", "max")))


def _cgroup_event(places: tuple[tuple[Path, str], ...]) -> int | None:
    for path, key in places:
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except OSError:
            continue
    return None
