"""The control plane of one server process: training jobs and inference, on one runtime and database."""

from __future__ import annotations

from dataclasses import dataclass

from forklift.config import Settings
from forklift.control.backend import Backend, LocalBackend
from forklift.control.inference import Inference
from forklift.control.inference.invocationmetrics import InvocationMetrics
from forklift.control.inference.logs import GROUP_PREFIX, EndpointLogSource
from forklift.control.inference.models import EndpointConfigRow, EndpointRow, ModelRow
from forklift.control.logs import GROUP, TrainingLogSource
from forklift.control.logsource import LogSource, MergedLogSource
from forklift.control.metricstore import MetricStore
from forklift.control.scheduler import Scheduler
from forklift.control.settings import ControlSettings, control_settings
from forklift.control.store import JobStore
from forklift.control.tags import TagStore
from forklift.control.training import TrainingService
from forklift.runtime import Runtime


@dataclass
class ControlPlane:
    settings: Settings
    control: ControlSettings
    store: JobStore
    scheduler: Scheduler
    training: TrainingService
    logs: TrainingLogSource
    inference: Inference
    backend: Backend
    tags: TagStore
    metrics: MetricStore  # metric data points: training jobs' MetricDefinitions, endpoints' invocations
    invocations: InvocationMetrics  # endpoints' invocation counters, flushed into `metrics`

    @classmethod
    def create(cls, settings: Settings, runtime: Runtime | None = None, backend: Backend | None = None) -> ControlPlane:
        """On `backend`, by default the local one (runc, or the `runtime` given)."""
        backend = backend or LocalBackend(runtime)
        control = control_settings(settings)
        store = JobStore(settings.database_url)
        scheduler = Scheduler(settings, control, store, backend.training_launcher(settings))
        training = TrainingService(settings, store, scheduler, control)
        inference = Inference.create(settings, control, launcher_for=backend.instance_launcher)
        def exists(arn: str) -> bool:
            return has_resource(store, inference, arn)
        metrics = MetricStore(settings.database_url)
        return cls(settings, control, store, scheduler, training, TrainingLogSource(settings.home, store), inference,
                   backend, TagStore(settings.database_url, exists), metrics, InvocationMetrics(metrics))

    def log_source(self) -> LogSource:
        return MergedLogSource({GROUP: self.logs, GROUP_PREFIX: EndpointLogSource(self.settings.home)})

    def start(self) -> None:
        self.scheduler.start()
        self.inference.start()
        self.invocations.start()
        self.backend.report_orphans(self.settings, self.store, self.inference.store)

    def close(self) -> None:
        self.scheduler.close()
        self.inference.close()
        self.invocations.close()
        self.backend.close()


_INFERENCE_KINDS = {"model": ModelRow, "endpoint-config": EndpointConfigRow, "endpoint": EndpointRow}


def has_resource(jobs: JobStore, inference: Inference, arn: str) -> bool:
    """Whether `arn` (`arn:aws:sagemaker:REGION:ACCOUNT:TYPE/name`) is a resource this server has."""
    resource_type = arn.split(":", 5)[-1].split("/", 1)[0]
    if resource_type == "training-job":
        return jobs.has_arn(arn)
    kind = _INFERENCE_KINDS.get(resource_type)
    return kind is not None and inference.store.has_arn(kind, arn)
