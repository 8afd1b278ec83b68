"""The seam between an endpoint's fleet and the machinery that runs its containers.

An endpoint's `Fleet` asks an `InstanceLauncher` for instances of a variant and only ever talks to
what it gets back through the `VariantInstance` protocol: its address, whether (and how) it ended,
its last log lines. `LocalLauncher` runs each instance as a container of a `forklift.runtime.Runtime`
on this machine, pumps its output into its log stream and keeps a row per instance so that a
restarted server re-adopts it; another backend (a Kubernetes Deployment per variant) implements the
same two protocols.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from forklift.cancel import Cancel
from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.inference.logs import InstanceLogs
from forklift.control.inference.models import EndpointInstanceRow, EndpointRow, ModelRow
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore
from forklift.control.settings import control_settings
from forklift.runtime import ContainerHandle, ContainerStartError, Runtime, SpecError

log = logging.getLogger(__name__)


class VariantInstance(Protocol):
    """One running copy of a production variant's model container."""

    @property
    def name(self) -> str: ...

    @property
    def variant(self) -> str: ...

    @property
    def generation(self) -> int:
        """Which bring-up of the endpoint started it (a new config starts a new generation)."""
        ...

    @property
    def address(self) -> str | None:
        """Where its model server listens (port 8080), None while it has no address."""
        ...

    def ended(self) -> str | None:
        """None while it runs; else how it ended, with its last log lines (for a FailureReason)."""
        ...

    def last_lines(self, count: int = 10) -> str: ...


class InstanceLauncher(Protocol):
    def prepare(self, directory: Path, variant: dict, model: ModelRow, generation: int,
                endpoint: EndpointRow | None, cancel: Cancel) -> inst.PreparedVariant:
        """What every instance of the variant needs, made once per generation (image, model data);
        `DeployFailure` when it cannot be, `Cancelled` as soon as `cancel` is set (DeleteEndpoint, the
        server stopping), whatever the pull, a provider function or the model download waits for."""
        ...

    def start(self, endpoint: str, prepared: inst.PreparedVariant, generation: int) -> VariantInstance:
        """Start one instance of a prepared variant; `DeployFailure` when it cannot be started."""
        ...

    def stop(self, endpoint: str, instance: VariantInstance) -> None:
        """Stop an instance (after its last output was kept) and forget it."""
        ...

    def adopt(self, endpoint: str, keep: Callable[[EndpointInstanceRow], bool],
              skip: Collection[str] = ()) -> list[VariantInstance]:
        """Take over the running instances recorded for `endpoint` (started by an earlier server)
        that `keep` accepts; stop and forget the others, but leave those named in `skip` alone."""
        ...

    def close(self) -> None:
        """Stop following the instances; they keep serving for the next server to adopt."""
        ...


@dataclass(eq=False, frozen=True)
class LocalInstance:
    variant: str
    generation: int
    handle: ContainerHandle

    @property
    def name(self) -> str:
        return self.handle.name

    @property
    def address(self) -> str | None:
        return self.handle.address

    def ended(self) -> str | None:
        return inst.exit_description(self.handle)

    def last_lines(self, count: int = 10) -> str:
        return inst.last_lines(self.handle, count)


class LocalLauncher:
    """Instances as containers of a local `Runtime`, their output pumped into CloudWatch streams."""

    def __init__(self, settings: Settings, config: InferenceSettings, store: InferenceStore, runtime: Runtime):
        self.settings, self.config, self.store, self.runtime = settings, config, store, runtime
        self.limits = control_settings(settings)
        self.logs = InstanceLogs(limits=self.limits.log_limits)

    def _directory(self, endpoint: str) -> Path:
        return inst.endpoint_dir(self.settings, endpoint)

    def prepare(self, directory: Path, variant: dict, model: ModelRow, generation: int,
                endpoint: EndpointRow | None, cancel: Cancel) -> inst.PreparedVariant:
        return inst.prepare_variant(self.settings, directory, variant, model, generation, endpoint, cancel)

    def start(self, endpoint: str, prepared: inst.PreparedVariant, generation: int) -> LocalInstance:
        directory = self._directory(endpoint)
        name = inst.instance_name()
        # Recorded before the container exists: a server killed while it starts leaves a row, so the
        # next server adopts the container (or forgets the row when there is none) instead of leaving
        # it running unowned with its network namespace, overlay and lease.
        row = EndpointInstanceRow(container_name=name, endpoint=endpoint, variant=prepared.name,
                                  generation=generation, address=None, created_at=time.time())
        self.store.add_instance(row)
        try:
            handle = inst.start_instance(self.runtime, prepared, endpoint, directory, name, self.limits.pids_limit)
        except (ContainerStartError, SpecError) as exc:  # SpecError: e.g. an image User its /etc/passwd lacks
            self.store.remove_instance(name)
            self._remove_state(endpoint, name)
            raise inst.DeployFailure(f"Variant {prepared.name}: the container could not be started: {exc}") from exc
        except BaseException:
            self.store.remove_instance(name)
            self._remove_state(endpoint, name)
            raise
        self.logs.follow(directory, prepared.name, handle)
        row.address = handle.address
        self.store.add_instance(row)
        return LocalInstance(prepared.name, generation, handle)

    def stop(self, endpoint: str, instance: VariantInstance) -> None:
        assert isinstance(instance, LocalInstance), "an instance this launcher did not start"
        try:
            instance.handle.stop(grace=self.config.stop_grace)
        except Exception:
            log.exception("stopping instance %s of endpoint %s failed", instance.name, endpoint)
        self.logs.finish(self._directory(endpoint), instance.variant, instance.handle)
        self._remove_state(endpoint, instance.name)
        self.store.remove_instance(instance.name)

    def adopt(self, endpoint: str, keep: Callable[[EndpointInstanceRow], bool],
              skip: Collection[str] = ()) -> list[VariantInstance]:
        directory = self._directory(endpoint)
        adopted: list[VariantInstance] = []
        for row in self.store.instances(endpoint):
            if row.container_name in skip:
                continue
            handle = self.runtime.adopt(row.container_name)
            if handle is not None and handle.wait(timeout=0) is None and keep(row):
                adopted.append(LocalInstance(row.variant, row.generation, handle))
                self.logs.follow(directory, row.variant, handle)  # resumes at its offsets
                continue
            if handle is not None:
                handle.stop(grace=1.0)
                self.logs.finish(directory, row.variant, handle)
            self._remove_state(endpoint, row.container_name)
            self.store.remove_instance(row.container_name)
        return adopted

    def close(self) -> None:
        """Stop pumping output; the containers keep serving for the next server to adopt."""
        self.logs.close()

    def _remove_state(self, endpoint: str, name: str) -> None:
        """The stopped instance's state directory (`start_instance` puts it at `instances/<name>`): its
        upper layer, raw stdout/stderr and container.json. Its log stream lives on under `logs/`."""
        path = self._directory(endpoint) / "instances" / name
        if os.path.ismount(path / "rootfs"):  # a stop that failed left the overlay up: never delete through it
            log.warning("instance %s of endpoint %s still has its root file system mounted; its state "
                        "directory %s is kept", name, endpoint, path)
            return
        shutil.rmtree(path, ignore_errors=True)
