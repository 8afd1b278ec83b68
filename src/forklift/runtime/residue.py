"""What forklift's containers leave on the host, read raw, and how each piece is removed.

The runtime acquires a container's host resources in one order and releases them in the reverse
one (`runc.RuncRuntime.start`, `bundle.prepare`, `bundle.teardown`): the index entry is claimed
first, then the network lease, its namespace and the overlay; the lease is released after the
namespace is deleted, the index entry forgotten last. So a namespace no lease names, or a lease no
index entry names, outlived its container. This module only reads and removes; which of these
nothing owns any more is `forklift.control.leftovers`' to decide, from the database.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from forklift.runtime import bundle, network, overlay
from forklift.runtime.network import NETNS_DIR, NETNS_PREFIX, AddressPool, Lease
from forklift.runtime.runc import RuncRuntime
from forklift.runtime.spec import CONTAINER_PREFIX

_libc = ctypes.CDLL(None, use_errno=True)
CGROUP_ROOT = bundle.CGROUP_ROOT
# A lease, namespace, index entry or cgroup younger than this may belong to a container being set up
# right now (an index entry claimed before its state directory is made, a runtime with a state root
# of its own that this process cannot see): it is not judged yet.
SETTLE_SECONDS = 60.0


def settled(path: Path) -> bool:
    """Whether `path` was last changed SETTLE_SECONDS ago or more (False when it is gone)."""
    try:
        return time.time() - path.stat().st_mtime >= SETTLE_SECONDS
    except OSError:
        return False


@dataclass(frozen=True)
class Known:
    """A container the runtime knows of: by its index entry, by runc, or both."""

    id: str
    state_dir: Path | None  # None: its index entry names none and runc has no bundle for it
    indexed: bool
    in_runc: bool

    @property
    def name(self) -> str:
        return self.id.removeprefix(CONTAINER_PREFIX)


def known_containers(runtime: RuncRuntime) -> dict[str, Known]:
    """Every forklift container in the runtime's index and in runc's list (index read first)."""
    indexed: dict[str, str | None] = {}
    if runtime.index_dir.is_dir():
        for entry in runtime.index_dir.glob(f"{CONTAINER_PREFIX}*.json"):
            data = bundle.read_json(entry) or {}
            indexed[entry.stem] = data.get("state_dir")
    listed = {c["id"]: c.get("bundle") for c in runtime.cli.list() if c.get("id", "").startswith(CONTAINER_PREFIX)}
    found = {}
    for cid in indexed.keys() | listed.keys():
        state_dir = indexed.get(cid) or listed.get(cid)
        found[cid] = Known(cid, Path(state_dir) if state_dir else None, cid in indexed, cid in listed)
    return found


def stale_index_entry(runtime: RuncRuntime, known: Known) -> bool:
    """An index entry of a container runc has no such container for and whose state directory is gone,
    claimed SETTLE_SECONDS ago or more: `RuncRuntime.start` claims the entry before the state
    directory exists, so a younger one may be a container being created right now."""
    return (known.indexed and not known.in_runc and (known.state_dir is None or not known.state_dir.exists())
            and settled(runtime.index_dir / f"{known.id}.json"))


def remove_index_entry(runtime: RuncRuntime, cid: str) -> None:
    """Forget a stale index entry, read again first: nothing else (a container being started in the
    meantime under that name is neither adopted nor stopped)."""
    entry = runtime.index_dir / f"{cid}.json"
    state_dir = (bundle.read_json(entry) or {}).get("state_dir")
    known = Known(cid, Path(state_dir) if state_dir else None, entry.exists(), runtime.cli.state(cid) is not None)
    if stale_index_entry(runtime, known):
        entry.unlink(missing_ok=True)


def remove_container(runtime: RuncRuntime, known: Known) -> None:
    """Stop it (TERM, then KILL) and release everything it holds; then forget its index entry."""
    handle = runtime.adopt(known.name)
    if handle is not None:
        handle.stop(grace=1.0)  # tears down and forgets the index entry
    elif known.in_runc:
        runtime.cli.kill(known.id, "KILL", all=True)
        runtime.cli.delete(known.id, force=True)
    (runtime.index_dir / f"{known.id}.json").unlink(missing_ok=True)


# -- network ------------------------------------------------------------------------------------
def lease_settled(since: float) -> bool:
    return time.time() - since >= SETTLE_SECONDS


def namespaces() -> list[str]:
    """forklift's network namespaces (`forklift-<lease index>`)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(NETNS_PREFIX))
    except OSError:
        return []


def namespace_in_use(name: str) -> bool:
    """Whether any process runs in the namespace (what a live container always has)."""
    try:
        target = os.stat(NETNS_DIR / name)
    except OSError:
        return False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


def remove_lease(pool: AddressPool, lease: Lease) -> None:
    """Its firewall rules (whatever ports they opened), veth, namespace, then the /30 itself."""
    network.release_owner(lease.owner, pool)


def namespace_settled(name: str) -> bool:
    """Made SETTLE_SECONDS ago or more (its nsfs inode's time): a younger one may be a container's
    network being set up by a runtime whose lease table this process does not read."""
    return settled(NETNS_DIR / name)


def remove_namespace(pool: AddressPool, name: str) -> None:
    """Delete it (and its host veth) if, with the lease table held, still no lease names it and no
    process runs in it: no lease can be taken for it meanwhile."""
    with pool.holding() as leased:
        if name in leased or not namespace_settled(name) or namespace_in_use(name):
            return
        index = name.removeprefix(NETNS_PREFIX)
        commands = f"link del {network.HOST_IF_PREFIX}{index}\nnetns del {name}\n"
        subprocess.run(["ip", "-force", "-batch", "-"], input=commands, capture_output=True, text=True)


# -- cgroups ------------------------------------------------------------------------------------
def cgroups() -> dict[str, list[Path]]:
    """forklift's container cgroups (`/forklift/<name>`, v1 controllers or v2), by container name."""
    found: dict[str, list[Path]] = {}
    parents = [CGROUP_ROOT / "forklift"] + [d / "forklift" for d in _controllers()]
    for parent in parents:
        try:
            children = [c for c in parent.iterdir() if c.is_dir()]
        except OSError:
            continue
        for child in children:
            found.setdefault(child.name, []).append(child)
    return found


def _controllers() -> list[Path]:
    try:
        return [d for d in CGROUP_ROOT.iterdir() if d.is_dir() and not d.is_symlink()]
    except OSError:
        return []


def cgroup_idle(paths: list[Path]) -> bool:
    """No process in any of them, and none made within SETTLE_SECONDS."""
    for path in paths:
        try:
            if (path / "cgroup.procs").read_text().strip():
                return False
            if time.time() - path.stat().st_mtime < SETTLE_SECONDS:
                return False
        except OSError:
            continue
    return True


def remove_cgroup(paths: list[Path]) -> None:
    for path in paths:
        for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir():
                _rmdir(child)
        _rmdir(path)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


# -- mounts -------------------------------------------------------------------------------------
def mounts_under(root: Path, fstype: str) -> list[Path]:
    """Mount points of `fstype` below `root` (from /proc/self/mountinfo, octal escapes decoded)."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_bytes().decode(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        fields, _, rest = line.partition(" - ")
        target = _unescape(fields.split()[4])
        if target.startswith(prefix) and rest.split()[:1] == [fstype]:
            found.append(Path(target))
    return found


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def unmount(path: Path) -> None:
    """Detach the mount (lazily, so a process still inside cannot keep it)."""
    if _libc.umount2(os.fsencode(path), 0) != 0:
        _libc.umount2(os.fsencode(path), overlay.MNT_DETACH)
