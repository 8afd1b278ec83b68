"""Admit training jobs within the machine's capacity and run each one in a worker thread.

Capacity is CPU and memory: a job needs its instance type's figures *clamped to this machine*
(so one job of any instance type always fits an idle machine), times its InstanceCount. Jobs are
admitted first come, first served; a job that does not fit waits with SecondaryStatus Pending and
a message saying what it waits for, and nothing behind it jumps the queue. A backend that
schedules by itself (a cluster; its launcher's `limits_capacity` is False) gets every job at once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from forklift.config import Settings
from forklift.control import status
from forklift.control.instance_types import UnknownInstanceType, resolve_instance_type
from forklift.control.launching import TrainingLauncher
from forklift.control.models import TrainingJobRow
from forklift.control.reconcile import reconcile
from forklift.control.runner import JobRunner
from forklift.control.settings import ControlSettings
from forklift.control.store import JobStore
from forklift.runtime import ContainerHandle

log = logging.getLogger(__name__)
GIB = 1024**3
DEFAULT_DEMAND = (1.0, 1 * GIB)  # a job without ResourceConfig


@dataclass
class Running:
    thread: threading.Thread
    stop: threading.Event
    cpus: float
    memory: int


def demand(row: TrainingJobRow) -> tuple[float, int]:
    resources = row.request.get("ResourceConfig") or {}
    if "InstanceType" not in resources:
        return DEFAULT_DEMAND
    try:
        r = resolve_instance_type(resources["InstanceType"])
    except UnknownInstanceType:
        return DEFAULT_DEMAND
    count = int(resources.get("InstanceCount", 1))
    return r.cpus * count, r.memory_bytes * count


class Scheduler:
    def __init__(self, settings: Settings, control: ControlSettings, store: JobStore, launcher: TrainingLauncher):
        self.settings, self.control, self.store, self.launcher = settings, control, store, launcher
        self.running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.shutdown = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the service calls ---------------------------------------------------------
    def submit(self, name: str) -> None:
        self._wake.set()

    def stop(self, name: str) -> None:
        with self._lock:
            job = self.running.get(name)
        if job is not None:
            job.stop.set()
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        for name, handle in reconcile(self.store, self.launcher).items():
            row = self.store.get(name)
            self._launch(row, handle)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="forklift-scheduler")
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop scheduling; running containers keep running for the next server to adopt."""
        self.shutdown.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        with self._lock:
            threads = [job.thread for job in self.running.values()]
        for thread in threads:
            thread.join(timeout)

    def in_use(self) -> tuple[float, int]:
        with self._lock:
            return (sum(j.cpus for j in self.running.values()), sum(j.memory for j in self.running.values()))

    # -- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.shutdown.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self.shutdown.is_set():
                return
            try:
                self._admit()
            except Exception:
                log.exception("scheduler pass failed")

    def _admit(self) -> None:
        blocked = False
        for row in self.store.active():
            if row.phase != "queued" or row.name in self.running:
                continue
            if row.stop_reason:
                self.store.update(row.name, _stopped_while_waiting)
                continue
            cpus, memory = demand(row)
            used_cpus, used_memory = self.in_use()
            fits = (used_cpus + cpus <= self.control.capacity_cpus + 1e-9
                    and used_memory + memory <= self.control.capacity_memory) or not self.running \
                or not self.launcher.limits_capacity
            if blocked or not fits:
                blocked = True
                message = (f"Waiting for capacity: the job needs {cpus:g} vCPU and {memory / GIB:.1f} GiB; "
                           f"{used_cpus:g} of {self.control.capacity_cpus:g} vCPU and {used_memory / GIB:.1f} of "
                           f"{self.control.capacity_memory / GIB:.1f} GiB are in use")
                if row.secondary_status != "Pending" or row.transitions[-1].get("StatusMessage") != message:
                    self.store.update(row.name, lambda r, m=message: status.step(r, "Pending", m))
                continue
            if row.secondary_status == "Pending":
                self.store.update(row.name, lambda r: status.step(r, "Starting", "Capacity available; starting"))
            self._launch(row, None)

    def _launch(self, row: TrainingJobRow, handle: ContainerHandle | None) -> None:
        cpus, memory = demand(row)
        stop = threading.Event()
        runner = JobRunner(self.settings, self.control, self.store, self.launcher, row.name, stop, self.shutdown)

        def work() -> None:
            try:
                runner.run(handle)
            finally:
                with self._lock:
                    self.running.pop(row.name, None)
                self._wake.set()

        thread = threading.Thread(target=work, daemon=True, name=f"job-{row.name}")
        with self._lock:
            self.running[row.name] = Running(thread, stop, cpus, memory)
        thread.start()


def _stopped_while_waiting(row: TrainingJobRow) -> None:
    row.phase = "done"
    status.step(row, "Stopped", "Training job stopped before it was admitted")
