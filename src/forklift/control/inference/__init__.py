"""Real-time inference: models, endpoint configs, endpoints, their fleets and the routing table.

    inference = Inference.create(settings, control, runtime)
    inference.start()                       # re-adopt endpoints' containers, resume their workers
    inference.service.create_model(...)     # InferenceService: the API's operations
    inference.router.get("my-endpoint")     # what InvokeEndpoint reads (in memory, no database)
    inference.close()                       # stop the workers; containers keep serving

Modules: `models`/`store` (tables), `images` (Platform/Vpc rules, credentials, digest), `instances`
(one container: pull, model data, start, /ping), `fleet`/`worker`/`healing`/`scaling` (state
machines), `routing` (weighted variant choice, round-robin instances), `upstream` (the keep-alive
HTTP client InvokeEndpoint proxies through), `logs` (each instance's output and the fleet's events
as CloudWatch log streams).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from forklift.config import Settings
from forklift.control.inference.launcher import InstanceLauncher, LocalLauncher
from forklift.control.inference.manager import FleetManager
from forklift.control.inference.routing import Router
from forklift.control.inference.service import InferenceService
from forklift.control.inference.settings import InferenceSettings, inference_settings
from forklift.control.inference.store import InferenceStore
from forklift.control.settings import ControlSettings, control_settings
from forklift.runtime import RuncRuntime, Runtime

LauncherFactory = Callable[[Settings, InferenceSettings, InferenceStore], InstanceLauncher]


@dataclass
class Inference:
    settings: InferenceSettings
    store: InferenceStore
    router: Router
    fleet: FleetManager
    launcher: InstanceLauncher
    service: InferenceService

    @classmethod
    def create(cls, settings: Settings, control: ControlSettings | None = None,
               runtime: Runtime | None = None, launcher_for: LauncherFactory | None = None) -> Inference:
        """Instances from the launcher `launcher_for` makes (a backend's), else containers of `runtime`
        (runc by default)."""
        control = control or control_settings(settings)
        config = inference_settings(settings)
        store = InferenceStore(settings.database_url)
        router = Router()
        launcher = (launcher_for(settings, config, store) if launcher_for is not None
                    else LocalLauncher(settings, config, store, runtime or RuncRuntime()))
        fleet = FleetManager(settings, config, store, launcher, router)
        return cls(config, store, router, fleet, launcher, InferenceService(settings, control, store, fleet))

    def start(self) -> None:
        self.fleet.start()

    def close(self) -> None:
        self.fleet.close()
        self.launcher.close()


__all__ = ["Inference", "InferenceService", "Router"]
