"""The fleet manager: one worker thread per endpoint drives its state machine and its containers.

    Creating  -> bring up every variant's instances, wait for /ping -> InService | Failed
    Updating  -> (UpdateEndpoint) bring up the new config's fleet, shift traffic to it once healthy,
                 drain and stop the old one; (UpdateEndpointWeightsAndCapacities) reweigh, scale
    InService -> health checks: an instance that exited or failed /ping repeatedly is replaced
    Deleting  -> stop everything, drop the row (DescribeEndpoint then answers ValidationException)

The API only writes the desired state to the database and calls `wake(name)`; the manager only
starts and finds workers (`worker`), each of which owns its endpoint's `Fleet` and publishes the
healthy instances to the `Router`. Containers outlive the server: a new worker re-adopts them.
"""

from __future__ import annotations

import logging
import threading

from forklift.config import Settings
from forklift.control.inference.launcher import InstanceLauncher
from forklift.control.inference.models import EndpointRow
from forklift.control.inference.routing import Router
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore
from forklift.control.inference.worker import EndpointWorker

log = logging.getLogger(__name__)


class FleetManager:
    def __init__(self, settings: Settings, config: InferenceSettings, store: InferenceStore,
                 launcher: InstanceLauncher, router: Router):
        self.settings, self.config, self.store, self.launcher, self.router = settings, config, store, launcher, router
        self.workers: dict[str, EndpointWorker] = {}
        self.lock = threading.Lock()
        self.shutdown = threading.Event()

    def _worker(self, name: str) -> EndpointWorker:
        return EndpointWorker(self, name, self.settings, self.config, self.store, self.launcher, self.router)

    def start(self) -> None:
        """Re-adopt every endpoint's containers now (so they serve as soon as the server does), then
        resume the workers."""
        for row in self.store.all(EndpointRow):
            if row.status == "Failed":
                continue
            worker = self._worker(row.name)
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
                worker = self.workers[name] = self._worker(name)
                worker.thread.start()
            worker.wake.set()

    def forget(self, name: str) -> None:
        self.workers.pop(name, None)

    def close(self, timeout: float = 5.0) -> None:
        """Stop driving endpoints; their containers keep serving for the next server to adopt."""
        self.shutdown.set()
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.wake.set()
        for worker in workers:
            worker.thread.join(timeout)
