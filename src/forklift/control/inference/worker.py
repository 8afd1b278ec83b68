"""One endpoint's worker thread (see `fleet`): create, update, heal, delete."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from forklift.control.inference import instances as inst
from forklift.control.inference.fleet import Aborted, FleetManager, Instance
from forklift.control.inference.models import EndpointConfigRow, EndpointRow, ModelRow
from forklift.control.inference.variants import summaries

log = logging.getLogger(__name__)
START_POLL = 0.2


class EndpointWorker:
    def __init__(self, fleet: FleetManager, name: str):
        self.fleet, self.name = fleet, name
        self.store, self.config = fleet.store, fleet.config
        self.directory = inst.endpoint_dir(fleet.settings, name)
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"endpoint-{name}")
        self.fleet_instances: list[Instance] = []  # the instances that serve (or will serve) traffic
        self.weights: dict[str, float] = {}
        self.generation = 0
        self.prepared: dict[tuple[int, str], inst.PreparedVariant] = {}

    def event(self, message: str) -> None:
        log.info("endpoint %s: %s", self.name, message)
        inst.log_event(self.directory, message)

    def publish(self) -> None:
        self.fleet.publish(self.name, self.fleet_instances, self.weights)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        while not self.fleet.shutdown.is_set():
            with self.fleet.lock:
                row = self.store.get(EndpointRow, self.name)
                if row is None or row.status == "Failed":
                    self.fleet.workers.pop(self.name, None)
                    return
            try:
                if row.status == "Deleting":
                    return self._delete()
                if row.status == "Creating":
                    self._create(row)
                elif row.status == "Updating":
                    self._update(row)
                else:
                    self._heal(row)
            except Aborted:
                continue
            except Exception as exc:
                log.exception("endpoint %s: worker step failed", self.name)
                if row.status == "Creating":
                    self._fail(f"InternalServerError: {exc}")
            self.wake.wait(self.config.health_interval)
            self.wake.clear()

    def _fail(self, reason: str) -> None:
        self.event(f"Failed: {reason}")
        self.fleet.router.publish(self.name, None)

        def failed(r: EndpointRow) -> None:
            r.status, r.failure_reason = "Failed", reason[:1024]
            r.variants = [{**v, "CurrentInstanceCount": 0, "VariantStatus": []} for v in r.variants]
        self.store.update_endpoint(self.name, failed)

    def _check_abort(self) -> None:
        row = self.store.get(EndpointRow, self.name)
        if row is None or row.status == "Deleting" or self.fleet.shutdown.is_set():
            raise Aborted()

    # -- bringing instances up ------------------------------------------------------------------
    def _prepare(self, variant: dict, generation: int) -> inst.PreparedVariant:
        key = (generation, variant["VariantName"])
        if key not in self.prepared:
            model = self.store.get(ModelRow, variant["ModelName"])
            if model is None:
                raise inst.DeployFailure(f"Variant {variant['VariantName']}: model {variant['ModelName']} does "
                                         "not exist")
            self.prepared[key] = inst.prepare_variant(self.fleet.settings, self.directory, variant, model,
                                                      generation)
        return self.prepared[key]

    def _bring_up(self, variants: list[dict], generation: int, counts: dict[str, int]) -> list[Instance]:
        """Start `counts[variant]` healthy instances of each variant, or raise DeployFailure."""
        with ThreadPoolExecutor(max_workers=max(1, len(variants))) as pool:
            prepared = list(pool.map(lambda v: self._prepare(v, generation), variants))
        started: list[Instance] = []
        try:
            for variant, ready in zip(variants, prepared):
                for _ in range(counts.get(variant["VariantName"], 0)):
                    self._check_abort()
                    started.append(self.fleet.start_instance(self.name, ready, generation))
                    self.event(f"Started instance {started[-1].name} of variant {ready.name} "
                               f"({started[-1].address})")
            timeouts = {v["VariantName"]: float(v.get("ContainerStartupHealthCheckTimeoutInSeconds")
                                                or self.config.startup_timeout) for v in variants}
            self._await_healthy(started, timeouts)
        except BaseException:
            self.fleet.retire(self.name, started, drain=False)
            raise
        return started

    def _await_healthy(self, pending_list: list[Instance], timeouts: dict[str, float]) -> None:
        began = time.monotonic()
        pending = list(pending_list)
        last_check = began
        while pending:
            if time.monotonic() - last_check > 1.0:
                self._check_abort()
                last_check = time.monotonic()
            for instance in list(pending):
                if inst.ping(instance.address):
                    pending.remove(instance)
                    self.event(f"Instance {instance.name} of variant {instance.variant} passed its health check")
                    continue
                ended = inst.exit_description(instance.handle)
                if ended:
                    raise inst.DeployFailure(f"Variant {instance.variant}: {ended}")
                limit = timeouts.get(instance.variant, self.config.startup_timeout)
                if time.monotonic() - began > limit:
                    tail = inst.last_lines(instance.handle)
                    raise inst.DeployFailure(
                        f"Variant {instance.variant}: the health check timed out: the container did not answer "
                        f"GET /ping with 200 within {limit:g} seconds" + (f"; last log lines:\n{tail}" if tail else ""))
            if pending:
                time.sleep(START_POLL)

    # -- Creating -------------------------------------------------------------------------------
    def _create(self, row: EndpointRow) -> None:
        config = self.store.get(EndpointConfigRow, row.config_name)
        if config is None:
            return self._fail(f"The endpoint configuration {row.config_name} no longer exists")
        variants = config.request["ProductionVariants"]
        generation = row.generation + 1
        self.event(f"Creating endpoint from configuration {row.config_name}")
        counts = {v["VariantName"]: int(v.get("InitialInstanceCount", 1)) for v in variants}
        try:
            fleet = self._bring_up(variants, generation, counts)
        except inst.DeployFailure as exc:
            return self._fail(str(exc))
        self.fleet_instances, self.generation = fleet, generation
        self.weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in variants}
        self.publish()
        images = {p.name: p.deployed_image for (g, _), p in self.prepared.items() if g == generation}

        def in_service(r: EndpointRow) -> None:
            r.status, r.failure_reason, r.generation = "InService", None, generation
            r.variants = summaries(variants, images, counts, self.weights)
        self.store.update_endpoint(self.name, in_service)
        self.event("Endpoint is InService")

    # -- Updating -------------------------------------------------------------------------------
    def _update(self, row: EndpointRow) -> None:
        from forklift.control.inference.scaling import apply_weights_and_capacities

        if row.pending_config:
            return self._switch_config(row)
        if row.pending_variants is not None:
            return apply_weights_and_capacities(self, row)
        self.store.update_endpoint(self.name, lambda r: setattr(r, "status", "InService"))

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
            self.event(f"Updating endpoint to configuration {target}: starting the new fleet")
            try:
                fresh = self._bring_up(variants, generation, counts)
            except inst.DeployFailure as exc:
                failure = str(exc)
        if failure is not None:
            self.event(f"Update to {target} failed, the endpoint keeps serving {row.config_name}: {failure}")

            def rolled_back(r: EndpointRow) -> None:
                r.status, r.pending_config = "InService", None
                r.failure_reason = f"Update to endpoint configuration {target} failed: {failure}"[:1024]
            self.store.update_endpoint(self.name, rolled_back)
            return
        old, self.fleet_instances = self.fleet_instances, fresh
        self.weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in variants}
        self.generation = generation
        self.publish()
        self.event(f"Traffic shifted to configuration {target}; draining {len(old)} old instance(s)")
        self.fleet.retire(self.name, old)
        inst.remove_model_dirs(self.directory, keep_generation=generation)
        images = {p.name: p.deployed_image for (g, _), p in self.prepared.items() if g == generation}
        self.prepared = {k: v for k, v in self.prepared.items() if k[0] == generation}

        def switched(r: EndpointRow) -> None:
            r.status, r.failure_reason, r.pending_config = "InService", None, None
            r.config_name, r.generation = target, generation
            r.variants = summaries(variants, images, counts, self.weights)
        self.store.update_endpoint(self.name, switched)
        self.event(f"Endpoint is InService with configuration {target}")

    # -- Deleting -------------------------------------------------------------------------------
    def _delete(self) -> None:
        self.fleet.router.publish(self.name, None)
        self.event("Deleting endpoint: stopping its instances")
        leftovers = [Instance(r.container_name, r.variant, r.generation, h)
                     for r in self.store.instances(self.name)
                     if r.container_name not in {i.name for i in self.fleet_instances}
                     and (h := self.fleet.runtime.adopt(r.container_name)) is not None]
        self.fleet.retire(self.name, self.fleet_instances + leftovers, drain=False)
        for row in self.store.instances(self.name):
            self.store.remove_instance(row.container_name)
        inst.remove_model_dirs(self.directory)
        with self.fleet.lock:
            self.store.delete(EndpointRow, self.name)
            self.fleet.workers.pop(self.name, None)
        self.event("Endpoint deleted")

    # -- after a restart ------------------------------------------------------------------------
    def adopt(self) -> None:
        """Take over the containers a previous server started for this endpoint (before the thread runs)."""
        row = self.store.get(EndpointRow, self.name)
        if row is None:
            return
        serving = row.status in ("InService", "Updating")
        for irow in self.store.instances(self.name):
            handle = self.fleet.runtime.adopt(irow.container_name)
            if serving and irow.generation == row.generation and handle is not None \
                    and handle.wait(timeout=0) is None:
                self.fleet_instances.append(Instance(irow.container_name, irow.variant, irow.generation, handle))
                self.fleet.logs.follow(self.directory, irow.variant, handle)  # resumes at its offsets
                continue
            if handle is not None:
                handle.stop(grace=1.0)
                self.fleet.logs.finish(self.directory, irow.variant, handle)
            self.store.remove_instance(irow.container_name)
        self.generation = row.generation
        self.weights = {v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in row.variants}
        if self.fleet_instances:
            self.publish()
            self.event(f"Re-adopted {len(self.fleet_instances)} running instance(s) after a server restart")

    # -- InService ------------------------------------------------------------------------------
    def _heal(self, row: EndpointRow) -> None:
        from forklift.control.inference.healing import heal

        heal(self, row)
