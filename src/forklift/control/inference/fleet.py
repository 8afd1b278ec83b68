"""One endpoint's fleet: the instances that serve its traffic, their weights, and how they change.

The endpoint's worker owns its `Fleet` and changes it only through these methods; healing and
scaling receive it as their collaborator. Instances come from an `InstanceLauncher` (see `launcher`);
every change of the serving set is published to the `Router` at once, and an instance leaves the
set before it is stopped, so no request is routed to a container that is going away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from forklift.cancel import Cancel, Cancelled
from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.inference.backoff import ReplacementBackoff
from forklift.control.inference.launcher import InstanceLauncher, VariantInstance
from forklift.control.inference.models import EndpointRow, ModelRow
from forklift.control.inference.routing import EndpointRoute, Router, VariantRoute
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore

log = logging.getLogger(__name__)
START_POLL = 0.2
DRAIN_LIMIT = 65.0  # a request may take 60 s; then the old instance is stopped anyway


class Aborted(Exception):
    """The endpoint was deleted (or the server is stopping) while its fleet was being brought up."""


class Fleet:
    def __init__(self, endpoint: str, settings: Settings, config: InferenceSettings, store: InferenceStore,
                 launcher: InstanceLauncher, router: Router, check_abort: Callable[[], None], cancel: Cancel):
        self.endpoint, self.settings, self.config, self.store = endpoint, settings, config, store
        # check_abort between steps; cancel inside a wait (a pull, a model download, the health check)
        self.launcher, self.router, self.check_abort, self.cancel = launcher, router, check_abort, cancel
        self.directory: Path = inst.endpoint_dir(settings, endpoint)
        self.instances: list[VariantInstance] = []  # the instances that serve (or will serve) traffic
        self.weights: dict[str, float] = {}
        self.generation = 0
        self._prepared: dict[tuple[int, str], inst.PreparedVariant] = {}
        self._failed_pings: dict[str, int] = {}
        self.backoff = ReplacementBackoff(config.health_interval)  # healing's pace when instances keep dying

    def event(self, message: str) -> None:
        log.info("endpoint %s: %s", self.endpoint, message)
        inst.log_event(self.directory, message)

    def count(self, variant: str) -> int:
        return sum(1 for i in self.instances if i.variant == variant)

    def of_variant(self, variant: str) -> list[VariantInstance]:
        return [i for i in self.instances if i.variant == variant]

    # -- the serving set -------------------------------------------------------------------------
    def publish(self) -> None:
        variants: dict[str, list] = {}
        for instance in self.instances:
            if instance.address:
                variants.setdefault(instance.variant, []).append(
                    self.router.instance(self.endpoint, instance.name, instance.address))
        self.router.publish(self.endpoint, EndpointRoute(
            [VariantRoute(name, self.weights.get(name, 1.0), routes) for name, routes in variants.items()]))

    def unpublish(self) -> None:
        self.router.publish(self.endpoint, None)

    def add(self, instances: Iterable[VariantInstance]) -> None:
        self.instances.extend(instances)
        self.publish()

    def withdraw(self, instances: Iterable[VariantInstance]) -> list[VariantInstance]:
        """Take instances out of the serving set (routes first); the caller retires them."""
        gone = list(instances)
        self.instances = [i for i in self.instances if i not in gone]
        for instance in gone:
            self._failed_pings.pop(instance.name, None)
        self.publish()
        return gone

    def replace(self, fresh: list[VariantInstance], generation: int,
                weights: dict[str, float]) -> list[VariantInstance]:
        """Serve `fresh` (a whole new generation) instead of the current set; returns the old set."""
        old, self.instances = self.instances, list(fresh)
        self.generation, self.weights = generation, dict(weights)
        self._prepared = {k: v for k, v in self._prepared.items() if k[0] == generation}
        self._failed_pings.clear()
        self.publish()
        return old

    def deployed_images(self, generation: int) -> dict[str, dict]:
        return {p.name: p.deployed_image for (g, _), p in self._prepared.items() if g == generation}

    # -- health ----------------------------------------------------------------------------------
    def broken(self, unhealthy_after: int) -> list[tuple[VariantInstance, str]]:
        """The serving instances that exited or failed /ping `unhealthy_after` times in a row, and why."""
        found = []
        for instance in list(self.instances):
            ended = instance.ended()
            if ended is None:
                if inst.ping(instance.address):
                    self._failed_pings.pop(instance.name, None)
                    continue
                failed = self._failed_pings[instance.name] = self._failed_pings.get(instance.name, 0) + 1
                if failed < unhealthy_after:
                    continue
                ended = f"GET /ping failed {failed} times in a row"
            found.append((instance, ended))
        return found

    # -- bringing instances up and down ----------------------------------------------------------
    def _prepare(self, variant: dict, generation: int) -> inst.PreparedVariant:
        key = (generation, variant["VariantName"])
        if key not in self._prepared:
            model = self.store.get(ModelRow, variant["ModelName"])
            if model is None:
                raise inst.DeployFailure(f"Variant {variant['VariantName']}: model {variant['ModelName']} does "
                                         "not exist")
            owner = self.store.get(EndpointRow, self.endpoint)
            try:
                self._prepared[key] = self.launcher.prepare(self.directory, variant, model, generation, owner,
                                                            self.cancel)
            except Cancelled:
                raise Aborted() from None
        return self._prepared[key]

    def bring_up(self, variants: list[dict], generation: int, counts: dict[str, int]) -> list[VariantInstance]:
        """Start `counts[variant]` healthy instances of each variant (not yet serving), or raise
        DeployFailure (or Aborted) with nothing left running."""
        with ThreadPoolExecutor(max_workers=max(1, len(variants))) as pool:
            prepared = list(pool.map(lambda v: self._prepare(v, generation), variants))
        started: list[VariantInstance] = []
        try:
            for variant, ready in zip(variants, prepared, strict=True):
                for _ in range(counts.get(variant["VariantName"], 0)):
                    self.check_abort()
                    started.append(self.launcher.start(self.endpoint, ready, generation))
                    self.event(f"Started instance {started[-1].name} of variant {ready.name} "
                               f"({started[-1].address})")
            timeouts = {v["VariantName"]: float(v.get("ContainerStartupHealthCheckTimeoutInSeconds")
                                                or self.config.startup_timeout) for v in variants}
            self._await_healthy(started, timeouts)
        except BaseException:
            self.retire(started, drain=False)
            raise
        self.backoff.started((i.name, i.variant) for i in started)
        return started

    def _await_healthy(self, instances: list[VariantInstance], timeouts: dict[str, float]) -> None:
        began = time.monotonic()
        pending = list(instances)
        while pending:
            for instance in list(pending):
                if self.cancel.is_set():  # before each ping: one that hangs takes its whole timeout
                    raise Aborted()
                if inst.ping(instance.address):
                    pending.remove(instance)
                    self.event(f"Instance {instance.name} of variant {instance.variant} passed its health check")
                    continue
                ended = instance.ended()
                if ended:
                    raise inst.DeployFailure(f"Variant {instance.variant}: {ended}")
                limit = timeouts.get(instance.variant, self.config.startup_timeout)
                if time.monotonic() - began > limit:
                    tail = instance.last_lines()
                    raise inst.DeployFailure(
                        f"Variant {instance.variant}: the health check timed out: the container did not answer "
                        f"GET /ping with 200 within {limit:g} seconds" + (f"; last log lines:\n{tail}" if tail else ""))
            if pending and self.cancel.wait(START_POLL):
                raise Aborted()

    def retire(self, retired: list[VariantInstance], drain: bool = True) -> None:
        """Stop instances that no route hands out any more, after their in-flight requests finished."""
        if not retired:
            return
        names = {i.name for i in retired}
        if drain:
            time.sleep(0.2)  # a request that picked the old route just before it changed
            deadline = time.monotonic() + DRAIN_LIMIT
            while self.router.in_flight(self.endpoint, names) and time.monotonic() < deadline:
                time.sleep(0.05)
        threads = [threading.Thread(target=self._stop, args=(i,)) for i in retired]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _stop(self, instance: VariantInstance) -> None:
        self.launcher.stop(self.endpoint, instance)
        self.router.forget(self.endpoint, instance.name)
        self.backoff.retired(instance.name)

    def adopt(self, serving_generation: int | None) -> None:
        """After a restart: serve the running instances of `serving_generation` again (None: the
        endpoint serves nothing, so every leftover instance is stopped)."""
        self.instances = self.launcher.adopt(
            self.endpoint, lambda row: serving_generation is not None and row.generation == serving_generation)

    def stop_all(self) -> None:
        """Stop every instance of the endpoint, serving or left over from an earlier server."""
        self.unpublish()
        serving, self.instances = self.instances, []
        leftovers = self.launcher.adopt(self.endpoint, lambda row: True, skip={i.name for i in serving})
        self.retire(serving + leftovers, drain=False)  # side by side: one stop grace for all of them
        self._prepared.clear()
