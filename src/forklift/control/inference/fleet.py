"""The fleet manager: one worker thread per endpoint drives its state machine and its containers.

    Creating  -> bring up every variant's instances, wait for /ping -> InService | Failed
    Updating  -> (UpdateEndpoint) bring up the new config's fleet, shift traffic to it once healthy,
                 drain and stop the old one; (UpdateEndpointWeightsAndCapacities) reweigh, scale
    InService -> health checks: an instance that exited or failed /ping repeatedly is replaced
    Deleting  -> stop everything, drop the row (DescribeEndpoint then answers ValidationException)

The API only writes the desired state to the database and calls `wake(name)`; workers publish the
healthy instances to the `Router`. Containers outlive the server: a new worker re-adopts them.
Every instance's stdout/stderr is pumped into its log stream from start to stop (`logs`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.inference.logs import InstanceLogs
from forklift.control.inference.models import EndpointInstanceRow, EndpointRow
from forklift.control.inference.routing import EndpointRoute, Router, VariantRoute
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore
from forklift.runtime import ContainerHandle, ContainerStartError, Runtime

if TYPE_CHECKING:
    from forklift.control.inference.worker import EndpointWorker

log = logging.getLogger(__name__)
DRAIN_LIMIT = 65.0  # a request may take 60 s; then the old instance is stopped anyway


class Aborted(Exception):
    """The endpoint was deleted while its fleet was being brought up."""


@dataclass(eq=False)
class Instance:
    name: str
    variant: str
    generation: int
    handle: ContainerHandle
    failed_pings: int = 0

    @property
    def address(self) -> str | None:
        return self.handle.address


class FleetManager:
    def __init__(self, settings: Settings, config: InferenceSettings, store: InferenceStore, runtime: Runtime,
                 router: Router):
        self.settings, self.config, self.store, self.runtime, self.router = settings, config, store, runtime, router
        self.workers: dict[str, EndpointWorker] = {}
        self.lock = threading.Lock()
        self.shutdown = threading.Event()
        self.logs = InstanceLogs()  # each instance's stdout/stderr -> its CloudWatch log stream

    def start(self) -> None:
        """Re-adopt every endpoint's containers now (so they serve as soon as the server does), then
        resume the workers."""
        from forklift.control.inference.worker import EndpointWorker

        for row in self.store.all(EndpointRow):
            if row.status == "Failed":
                continue
            worker = EndpointWorker(self, row.name)
            try:
                worker.adopt()
            except Exception:
                log.exception("endpoint %s: re-adopting its containers failed", row.name)
            with self.lock:
                self.workers[row.name] = worker
            worker.thread.start()

    def wake(self, name: str) -> None:
        """Make sure a worker drives endpoint `name` and let it look at the database now."""
        with self.lock:
            worker = self.workers.get(name)
            if worker is None:
                from forklift.control.inference.worker import EndpointWorker

                worker = self.workers[name] = EndpointWorker(self, name)
                worker.thread.start()
            worker.wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop driving endpoints; their containers keep serving for the next server to adopt."""
        self.shutdown.set()
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.wake.set()
        for worker in workers:
            worker.thread.join(timeout)
        self.logs.close()

    # -- shared by the workers -------------------------------------------------------------
    def publish(self, endpoint: str, fleet: list[Instance], weights: dict[str, float]) -> None:
        variants: dict[str, list] = {}
        for instance in fleet:
            if instance.address:
                variants.setdefault(instance.variant, []).append(
                    self.router.instance(endpoint, instance.name, instance.address))
        self.router.publish(endpoint, EndpointRoute(
            [VariantRoute(name, weights.get(name, 1.0), routes) for name, routes in variants.items()]))

    def start_instance(self, endpoint: str, prepared: inst.PreparedVariant, generation: int) -> Instance:
        directory = inst.endpoint_dir(self.settings, endpoint)
        try:
            handle = inst.start_instance(self.runtime, prepared, endpoint, directory)
        except ContainerStartError as exc:
            raise inst.DeployFailure(f"Variant {prepared.name}: the container could not be started: {exc}") from exc
        self.logs.follow(directory, prepared.name, handle)
        self.store.add_instance(EndpointInstanceRow(container_name=handle.name, endpoint=endpoint,
                                                    variant=prepared.name, generation=generation,
                                                    address=handle.address, created_at=time.time()))
        return Instance(handle.name, prepared.name, generation, handle)

    def retire(self, endpoint: str, retired: list[Instance], drain: bool = True) -> None:
        """Stop instances that no route hands out any more, after their in-flight requests finished."""
        if not retired:
            return
        names = {i.name for i in retired}
        if drain:
            time.sleep(0.2)  # a request that picked the old route just before it changed
            deadline = time.monotonic() + DRAIN_LIMIT
            while self.router.in_flight(endpoint, names) and time.monotonic() < deadline:
                time.sleep(0.05)
        threads = [threading.Thread(target=self._stop, args=(endpoint, i)) for i in retired]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _stop(self, endpoint: str, instance: Instance) -> None:
        try:
            instance.handle.stop(grace=self.config.stop_grace)
        except Exception:
            log.exception("stopping instance %s of endpoint %s failed", instance.name, endpoint)
        self.logs.finish(inst.endpoint_dir(self.settings, endpoint), instance.variant, instance.handle)
        self.store.remove_instance(instance.name)
        self.router.forget(endpoint, instance.name)
