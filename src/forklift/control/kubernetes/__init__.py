"""The Kubernetes backend: training jobs as `batch/v1` Jobs, endpoint variants as Deployments behind
Services, in one namespace of a cluster.

    backend = KubernetesBackend(settings, kube_settings(settings))   # connects, starts the watches
    ControlPlane.create(settings, backend=backend)

The objects are rendered by `forklift.kube.objects` and followed by one `forklift.kube.watch`
per kind (`training`, `endpoints`).
"""

from __future__ import annotations

from forklift.audit import AuditLog
from forklift.config import Settings
from forklift.control.inference.settings import InferenceSettings
from forklift.control.inference.store import InferenceStore
from forklift.control.kubernetes.endpoints import KubernetesInstanceLauncher
from forklift.control.kubernetes.orphans import report_orphans
from forklift.control.kubernetes.training import KubernetesTrainingLauncher
from forklift.control.store import JobStore
from forklift.kube import names
from forklift.kube.cluster import Cluster, ClusterError
from forklift.kube.settings import KubeSettings
from forklift.kube.watch import ObjectWatch

KINDS = ("Job", "Pod", "Deployment", "Service")  # what the watches follow


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, settings: Settings, kube: KubeSettings, cluster: Cluster | None = None):
        if kube.volume_claim is None:
            raise ClusterError("the Kubernetes runtime needs the ReadWriteMany PersistentVolumeClaim that holds "
                               f"FORKLIFT_HOME ({settings.home}), so pods can read their inputs and write their "
                               "model: set [kubernetes] volume_claim (and volume_subpath) in config.toml")
        self.settings, self.kube = settings, kube
        self.cluster = cluster or Cluster(kube)
        self.watch = ObjectWatch(self.cluster, KINDS, {names.MANAGED_BY: names.MANAGED_BY_VALUE})
        self.watch.start()
        for kind in KINDS:
            self.watch.synced(kind, 10.0)

    def training_launcher(self, settings: Settings) -> KubernetesTrainingLauncher:
        return KubernetesTrainingLauncher(settings, self.kube, self.cluster, self.watch)

    def instance_launcher(self, settings: Settings, config: InferenceSettings,
                          store: InferenceStore) -> KubernetesInstanceLauncher:
        return KubernetesInstanceLauncher(settings, self.kube, self.cluster, self.watch, store)

    def report_orphans(self, settings: Settings, store: JobStore, inference: InferenceStore) -> None:
        """Objects with forklift's label that no job or endpoint accounts for: reported, never deleted."""
        report_orphans(self.cluster, store, inference, AuditLog(self.settings.home))

    def close(self) -> None:
        self.watch.close()
