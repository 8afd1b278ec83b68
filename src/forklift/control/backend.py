"""What runs a server's containers: one object the composition root chooses, for both kinds of work.

A backend hands the control plane a `TrainingLauncher` (training jobs) and makes the
`InstanceLauncher` of the endpoints' fleets. `LocalBackend` runs both with a local `Runtime` (runc);
`control.kubernetes.KubernetesBackend` hands both to a cluster.
"""

from __future__ import annotations

from typing import Protocol

from forklift.config import Settings
from forklift.control.inference.launcher import InstanceLauncher, LocalLauncher
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore
from forklift.control.launching import TrainingLauncher
from forklift.control.leftovers import sweep
from forklift.control.locallaunch import LocalTrainingLauncher
from forklift.control.store import JobStore
from forklift.runtime import RuncRuntime, Runtime


class Backend(Protocol):
    name: str  # "runc", "kubernetes": what `forklift serve` prints and server.json records

    def training_launcher(self, settings: Settings) -> TrainingLauncher: ...

    def instance_launcher(self, settings: Settings, config: InferenceSettings,
                          store: InferenceStore) -> InstanceLauncher: ...

    def report_orphans(self, settings: Settings, store: JobStore, inference: InferenceStore) -> None:
        """Once the control plane has started: say which of the backend's objects nothing accounts for
        (and, where that is safe, remove them)."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    name = "runc"

    def __init__(self, runtime: Runtime | None = None):
        self.runtime = runtime or RuncRuntime()

    def training_launcher(self, settings: Settings) -> TrainingLauncher:
        return LocalTrainingLauncher(settings, self.runtime)

    def instance_launcher(self, settings: Settings, config: InferenceSettings,
                          store: InferenceStore) -> InstanceLauncher:
        return LocalLauncher(settings, config, store, self.runtime)

    def report_orphans(self, settings: Settings, store: JobStore, inference: InferenceStore) -> None:
        """What a killed server left on this host and nothing re-adopted is removed: this server holds
        the database's lease, so no other one can be starting containers for this home meanwhile."""
        if isinstance(self.runtime, RuncRuntime):
            sweep(settings, self.runtime, store, inference)

    def close(self) -> None:
        pass
