"""One endpoint's worker thread (see `manager`): create, update, heal, delete.

The worker owns the endpoint's `Fleet`; healing (`healing.heal`) and capacity changes
(`scaling.apply_weights_and_capacities`) are collaborators it calls with that fleet. It knows the
manager that started it only as a `WorkerHost`: the shutdown signal, and the lock under which it
leaves the manager's table of workers.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from forklift.cancel import Cancel
from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.inference.fleet import Aborted, Fleet
from forklift.control.inference.healing import heal
from forklift.control.inference.launcher import InstanceLauncher
from forklift.control.inference.models import EndpointConfigRow, EndpointRow
from forklift.control.inference.routing import Router
from forklift.control.inference.scaling import apply_weights_and_capacities
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore
from forklift.control.inference.variants import summaries

log = logging.getLogger(__name__)


class WorkerHost(Protocol):
    shutdown: threading.Event
    lock: threading.Lock  # held while a worker decides to end, so `wake` never finds a dead worker

    def forget(self, name: str) -> None:
        """Drop the worker of endpoint `name` from the host's table (called with `lock` held)."""
        ...


class EndpointWorker:
    def __init__(self, host: WorkerHost, name: str, settings: Settings, config: InferenceSettings,
                 store: InferenceStore, launcher: InstanceLauncher, router: Router):
        self.host, self.name, self.store, self.config = host, name, store, config
        # DeleteEndpoint or the server stopping, seen inside the fleet's waits as well as between its steps
        self.cancel = Cancel(host.shutdown, check=self._aborting)
        self.fleet = Fleet(name, settings, config, store, launcher, router, self._check_abort, self.cancel)
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"endpoint-{name}")

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        while not self.host.shutdown.is_set():
            with self.host.lock:
                row = self.store.get(EndpointRow, self.name)
                if row is None or row.status == "Failed":
                    self.host.forget(self.name)
                    return
            try:
                if row.status == "Deleting":
                    return self._delete()
                if row.status == "Creating":
                    self._create(row)
                elif row.status == "Updating":
                    self._update(row)
                else:
                    heal(self.fleet, row, self.store)
            except Aborted:
                continue
            except Exception as exc:
                log.exception("endpoint %s: worker step failed", self.name)
                if row.status == "Creating":
                    self._fail(f"InternalServerError: {exc}")
            self.wake.wait(self.config.health_interval)
            self.wake.clear()

    def _fail(self, reason: str) -> None:
        self.fleet.event(f"Failed: {reason}")
        self.fleet.unpublish()

        def failed(r: EndpointRow) -> None:
            r.status, r.failure_reason = "Failed", reason[:1024]
            r.variants = [{**v, "CurrentInstanceCount": 0, "VariantStatus": []} for v in r.variants]
        self.store.update_endpoint(self.name, failed)

    def _aborting(self) -> bool:
        row = self.store.get(EndpointRow, self.name)
        return row is None or row.status == "Deleting" or self.host.shutdown.is_set()

    def _check_abort(self) -> None:
        if self._aborting():
            raise Aborted()

    # -- Creating -------------------------------------------------------------------------------
    def _create(self, row: EndpointRow) -> None:
        config = self.store.get(EndpointConfigRow, row.config_name)
        if config is None:
            return self._fail(f"The endpoint configuration {row.config_name} no longer exists")
        variants = config.request["ProductionVariants"]
        generation = row.generation + 1
        self.fleet.event(f"Creating endpoint from configuration {row.config_name}")
        counts = {v["VariantName"]: int(v.get("InitialInstanceCount", 1)) for v in variants}
        try:
            fresh = self.fleet.bring_up(variants, generation, counts)
        except inst.DeployFailure as exc:
            return self._fail(str(exc))
        self.fleet.replace(fresh, generation, _initial_weights(variants))
        images = self.fleet.deployed_images(generation)
        weights = self.fleet.weights

        def in_service(r: EndpointRow) -> None:
            r.status, r.failure_reason, r.generation = "InService", None, generation
            r.variants = summaries(variants, images, counts, weights)
        self.store.update_endpoint(self.name, in_service)
        self.fleet.event("Endpoint is InService")

    # -- Updating -------------------------------------------------------------------------------
    def _update(self, row: EndpointRow) -> None:
        if row.pending_config:
            return self._switch_config(row)
        if row.pending_variants is not None:
            return apply_weights_and_capacities(self.fleet, row, self.store)

        def in_service(r: EndpointRow) -> None:
            r.status = "InService"
        self.store.update_endpoint(self.name, in_service)

    def _switch_config(self, row: EndpointRow) -> None:
        target = row.pending_config
        config = self.store.get(EndpointConfigRow, target)
        generation = row.generation + 1
        failure = None
        if config is None:
            failure = f"the endpoint configuration {target} no longer exists"
        else:
            variants = config.request["ProductionVariants"]
            counts = {v["VariantName"]: int(v.get("InitialInstanceCount", 1)) for v in variants}
            self.fleet.event(f"Updating endpoint to configuration {target}: starting the new fleet")
            try:
                fresh = self.fleet.bring_up(variants, generation, counts)
            except inst.DeployFailure as exc:
                failure = str(exc)
        if failure is not None:
            self.fleet.event(f"Update to {target} failed, the endpoint keeps serving {row.config_name}: {failure}")

            def rolled_back(r: EndpointRow) -> None:
                r.status, r.pending_config = "InService", None
                r.failure_reason = f"Update to endpoint configuration {target} failed: {failure}"[:1024]
            self.store.update_endpoint(self.name, rolled_back)
            return
        images = self.fleet.deployed_images(generation)
        old = self.fleet.replace(fresh, generation, _initial_weights(variants))
        self.fleet.event(f"Traffic shifted to configuration {target}; draining {len(old)} old instance(s)")
        self.fleet.retire(old)
        inst.remove_model_dirs(self.fleet.directory, keep_generation=generation)
        weights = self.fleet.weights

        def switched(r: EndpointRow) -> None:
            r.status, r.failure_reason, r.pending_config = "InService", None, None
            r.config_name, r.generation = target, generation
            r.variants = summaries(variants, images, counts, weights)
        self.store.update_endpoint(self.name, switched)
        self.fleet.event(f"Endpoint is InService with configuration {target}")

    # -- Deleting -------------------------------------------------------------------------------
    def _delete(self) -> None:
        self.fleet.event("Deleting endpoint: stopping its instances")
        self.fleet.stop_all()
        inst.remove_model_dirs(self.fleet.directory)
        with self.host.lock:
            self.store.delete(EndpointRow, self.name)
            self.host.forget(self.name)
        self.fleet.event("Endpoint deleted")

    # -- after a restart ------------------------------------------------------------------------
    def adopt(self) -> None:
        """Take over the containers a previous server started for this endpoint (before the thread runs)."""
        row = self.store.get(EndpointRow, self.name)
        if row is None:
            return
        serving = row.status in ("InService", "Updating")
        self.fleet.adopt(row.generation if serving else None)
        self.fleet.generation = row.generation
        self.fleet.weights = {v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in row.variants}
        if self.fleet.instances:
            self.fleet.publish()
            self.fleet.event(f"Re-adopted {len(self.fleet.instances)} running instance(s) after a server restart")


def _initial_weights(variants: list[dict]) -> dict[str, float]:
    return {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in variants}
