"""The Kubernetes backend: training jobs as `batch/v1` Jobs in one namespace of a cluster.

    backend = KubernetesBackend(settings, kube_settings(settings))   # connects, starts the watches
    ControlPlane.create(settings, backend=backend)

The objects are rendered by `forklift.kube.objects` and followed by one `forklift.kube.watch`
per kind. Endpoints on Kubernetes (a Deployment and a Service per variant) are not built yet: an
endpoint created on this backend fails with a reason saying so, rather than running on the server's
own machine.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from forklift.audit import AuditLog
from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.inference.launcher import VariantInstance
from forklift.control.inference.models import EndpointInstanceRow
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore
from forklift.control.kubernetes.orphans import report_orphans
from forklift.control.kubernetes.training import KubernetesTrainingLauncher
from forklift.control.store import JobStore
from forklift.kube import names
from forklift.kube.cluster import Cluster, ClusterError
from forklift.kube.settings import KubeSettings
from forklift.kube.watch import ObjectWatch


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, settings: Settings, kube: KubeSettings, cluster: Cluster | None = None):
        if kube.volume_claim is None:
            raise ClusterError("the Kubernetes runtime needs the ReadWriteMany PersistentVolumeClaim that holds "
                               f"FORKLIFT_HOME ({settings.home}), so pods can read their inputs and write their "
                               "model: set [kubernetes] volume_claim (and volume_subpath) in config.toml")
        self.settings, self.kube = settings, kube
        self.cluster = cluster or Cluster(kube)
        self.watch = ObjectWatch(self.cluster, ("Job", "Pod"), {names.MANAGED_BY: names.MANAGED_BY_VALUE})
        self.watch.start()
        self.watch.synced("Job", 10.0)
        self.watch.synced("Pod", 10.0)

    def training_launcher(self, settings: Settings) -> KubernetesTrainingLauncher:
        return KubernetesTrainingLauncher(settings, self.kube, self.cluster, self.watch)

    def instance_launcher(self, settings: Settings, config: InferenceSettings,
                          store: InferenceStore) -> NoEndpointsLauncher:
        return NoEndpointsLauncher()

    def report_orphans(self, store: JobStore, inference: InferenceStore) -> None:
        """Objects with forklift's label that no job or endpoint accounts for: reported, never deleted."""
        report_orphans(self.cluster, store, inference, AuditLog(self.settings.home))

    def close(self) -> None:
        self.watch.close()


class NoEndpointsLauncher:
    """Endpoints are refused on this backend, each with a FailureReason that says so."""

    def start(self, endpoint: str, prepared: inst.PreparedVariant, generation: int) -> VariantInstance:
        raise inst.DeployFailure("Endpoints are not available on forklift's Kubernetes runtime yet (training jobs "
                                 "are): serve this endpoint from a forklift server on the runc runtime")

    def stop(self, endpoint: str, instance: VariantInstance) -> None:
        pass

    def adopt(self, endpoint: str, keep: Callable[[EndpointInstanceRow], bool],
              skip: Collection[str] = ()) -> list[VariantInstance]:
        return []

    def close(self) -> None:
        pass
