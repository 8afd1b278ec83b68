"""What a killed server or command left on the host that no live resource owns, and its removal.

    found = find_leftovers(settings, runtime, jobs, inference)   # [Leftover(what, where, why)]
    for leftover in found: leftover.remove()
    sweep(settings, runtime, jobs, inference)                     # the server's start: find, log, remove

A container is owned while a training job that is still active (InProgress, Stopping) names it as its
`container_name`, or an endpoint instance row names it; both rows are written before the container
is started, so the host is read first and the database after: whatever the host showed was already
recorded by the time the rows are read, and a container being started now is never taken for a
leftover. Only containers whose state lives in this FORKLIFT_HOME (its `jobs/` and `endpoints/`) are
judged by its database; `forklift run`'s (`containers/`) belong to the command that runs them.

What the runtime acquires in a fixed order is judged machine-wide (see `forklift.runtime.residue`):
a network namespace no lease names, a lease no index entry or runc container names (with no process
inside), an empty cgroup runc has no container for, an index entry whose state directory is gone;
each only once it is a minute old (`residue.SETTLE_SECONDS`: a runtime claims an index entry before
it makes the state directory); a namespace and an index entry are checked again as they are removed,
and an index entry is only ever forgotten, its container never adopted and stopped. Below this home:
an overlay mount no known container uses, a content-store lease whose writer ended, a provider
function's scratch directory whose process ended (its pid and start time are in its name).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forklift.config import Settings
from forklift.control.inference.models import EndpointInstanceRow
from forklift.control.inference.store import InferenceStore
from forklift.control.store import JobStore
from forklift.credentials.invoke import TMP_PREFIX, tmp_owner
from forklift.errors import ForkliftError
from forklift.images.content import BlobStore
from forklift.runtime import procs, residue
from forklift.runtime.network import AddressPool
from forklift.runtime.runc import RuncRuntime
from forklift.runtime.spec import container_id

log = logging.getLogger("forklift.events")
OWNED_DIRS = ("jobs", "endpoints")  # where this home's server keeps its containers' state


@dataclass(frozen=True)
class Leftover:
    what: str  # "container", "network namespace", ...
    where: str
    why: str
    remove: Callable[[], None] = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.what} {self.where}: {self.why}"


def owned_containers(jobs: JobStore, inference: InferenceStore) -> set[str]:
    names = {row.container_name for row in jobs.active() if row.container_name}
    return names | {row.container_name for row in inference.all(EndpointInstanceRow)}


class NoDatabaseState(ForkliftError):
    """Containers lie in this home but the database holds no forklift state to judge them by."""


def find_leftovers(settings: Settings, runtime: RuncRuntime, jobs: JobStore | None, inference: InferenceStore | None,
                   pool: AddressPool | None = None, database: str = "") -> list[Leftover]:
    """`jobs` and `inference` None: the database (`database`, as shown) holds no forklift state, so no
    container of this home can be judged; `NoDatabaseState` when there is one."""
    pool = pool or runtime.pool
    # Read in the order the runtime acquires things (namespaces before leases before index entries),
    # and the database last.
    spaces = residue.namespaces()
    taken = pool.taken()
    groups = residue.cgroups()
    mounts = residue.mounts_under(settings.home, fstype="overlay")
    known = residue.known_containers(runtime)
    owned = owned_containers(jobs, inference) if jobs is not None and inference is not None else None
    found: list[Leftover] = []
    found += _containers(settings, runtime, known, owned, database)
    found += _network(pool, spaces, taken, known)
    found += _cgroups(groups, known)
    found += _mounts(mounts, known)
    found += _home_files(settings)
    return found


def _real(path: Path) -> Path:
    """Symlinks and `..` resolved: the kernel's mount table and runc name paths so."""
    return Path(os.path.realpath(path))


def _under(path: Path | None, root: Path) -> bool:
    return path is not None and _real(path).is_relative_to(_real(root))


def _containers(settings: Settings, runtime: RuncRuntime, known: dict[str, residue.Known],
                owned: set[str] | None, database: str = "") -> list[Leftover]:
    found = []
    for item in known.values():
        remove = functools.partial(residue.remove_container, runtime, item)
        if item.state_dir is not None and any(_under(item.state_dir, settings.home / d) for d in OWNED_DIRS):
            if owned is None:
                raise NoDatabaseState(
                    f"the database {database} holds no forklift state, yet container {item.id} lives in "
                    f"{settings.home}: set FORKLIFT_DATABASE_URL to the server's database and run forklift "
                    "doctor again")
            if item.name not in owned:
                state = "in runc's list" if item.in_runc else "in the runtime's index only"
                found.append(Leftover("container", f"{item.id} ({item.state_dir})", f"{state}, but no active "
                                      "training job or endpoint instance in this home's database names it", remove))
        elif residue.stale_index_entry(runtime, item):
            found.append(Leftover("index entry", str(runtime.index_dir / f"{item.id}.json"),
                                  f"its state directory {item.state_dir} is gone and runc has no such container",
                                  functools.partial(residue.remove_index_entry, runtime, item.id)))
    return found


def _network(pool: AddressPool, spaces: list[str], taken: list, known: dict[str, residue.Known]) -> list[Leftover]:
    found = []
    leased = {lease.netns for lease, _ in taken}
    for name in spaces:
        if name not in leased and residue.namespace_settled(name) and not residue.namespace_in_use(name):
            found.append(Leftover("network namespace", str(residue.NETNS_DIR / name),
                                  "no network lease names it and no process runs in it",
                                  lambda name=name: residue.remove_namespace(pool, name)))
    for lease, since in taken:
        if lease.owner not in known and residue.lease_settled(since) and not residue.namespace_in_use(lease.netns):
            found.append(Leftover("network lease", f"{lease.subnet} ({lease.netns}, {pool.table})",
                                  f"its owner {lease.owner} is in neither the runtime's index nor runc's list",
                                  lambda lease=lease: residue.remove_lease(pool, lease)))
    return found


def _cgroups(groups: dict[str, list[Path]], known: dict[str, residue.Known]) -> list[Leftover]:
    return [Leftover("cgroup", ", ".join(str(p) for p in paths),
                     "runc has no container for it and no process is in it",
                     lambda paths=paths: residue.remove_cgroup(paths))
            for name, paths in sorted(groups.items())
            if container_id(name) not in known and residue.cgroup_idle(paths)]


def _mounts(mounts: list[Path], known: dict[str, residue.Known]) -> list[Leftover]:
    used = {_real(item.state_dir / "rootfs") for item in known.values() if item.state_dir is not None}
    return [Leftover("overlay mount", str(path), "no container the runtime knows uses it",
                     lambda path=path: residue.unmount(path))
            for path in mounts if _real(path) not in used]


def _home_files(settings: Settings) -> list[Leftover]:
    found = []
    if settings.blobs_dir.is_dir():
        store = BlobStore(settings.blobs_dir)
        for path in store.abandoned_leases():
            found.append(Leftover("content-store lease", str(path), "the process that took it ended without "
                                  "releasing it", lambda store=store: _collect(store)))
    if settings.tmp_dir.is_dir():
        for path in sorted(settings.tmp_dir.glob(f"{TMP_PREFIX}*")):
            owner = tmp_owner(path.name)
            if owner is None or not procs.alive(*owner):
                found.append(Leftover("temporary directory", str(path), "a provider function's scratch directory "
                                      "whose process has ended", lambda path=path: shutil.rmtree(path, True)))
    return found


def _collect(store: BlobStore) -> None:
    with store.collecting():
        pass  # collecting removes the leases of processes that ended


def remove_all(found: list[Leftover]) -> list[tuple[Leftover, Exception]]:
    """Remove each leftover; returns those whose removal failed, with why."""
    failed = []
    for leftover in found:
        try:
            leftover.remove()
        except Exception as exc:  # noqa: BLE001 - one that cannot be removed must not keep the rest
            failed.append((leftover, exc))
    return failed


def sweep(settings: Settings, runtime: RuncRuntime, jobs: JobStore, inference: InferenceStore) -> list[Leftover]:
    """At a server's start, once jobs and endpoints have re-adopted their containers: remove the rest,
    each one a line on the events log."""
    try:
        found = find_leftovers(settings, runtime, jobs, inference)
    except Exception:
        log.exception("looking for leftovers of earlier servers failed")
        return []
    failures = dict((id(leftover), exc) for leftover, exc in remove_all(found))
    for leftover in found:
        if id(leftover) in failures:
            log.warning("could not remove leftover %s: %s", leftover, failures[id(leftover)])
        else:
            log.warning("removed leftover %s", leftover)
    return found
