"""The Kubernetes objects of this server's training jobs and endpoints as multi-document YAML, for
`forklift k8s render` (served by `api.kuberender`), rendered with this server's `[kubernetes]`
settings whatever runtime it runs its containers on. Secrets' data is always "<redacted>".
"""

from __future__ import annotations

from forklift.config import Settings
from forklift.control.errors import JobNotFound
from forklift.control.store import JobStore
from forklift.kube.settings import KubeSettings


class KubeManifests:
    def __init__(self, settings: Settings, store: JobStore, kube: KubeSettings):
        self.settings, self.store, self.kube = settings, store, kube

    def training_job(self, name: str) -> str:
        """The objects of training job `name`; `JobNotFound`, or `RenderFailed` saying why they cannot be had."""
        row = self.store.get(name)
        if row is None:
            raise JobNotFound(f"Training job {name} does not exist on this server.")
        # Here: the kubernetes client takes about a second to load, which a runc server that is never
        # asked for a render should not pay at start.
        from forklift.control.kubernetes.review import training_job_objects
        from forklift.kube.manifests import to_yaml

        return to_yaml(training_job_objects(self.settings, self.kube, row))

    def endpoint(self, name: str) -> str:
        """The objects of endpoint `name`; `NotFound`, or `RenderFailed` saying why they cannot be had."""
        from forklift.control.inference.store import InferenceStore
        from forklift.control.kubernetes.review import endpoint_objects  # see training_job
        from forklift.kube.manifests import to_yaml

        return to_yaml(endpoint_objects(self.settings, self.kube, InferenceStore(self.settings.database_url), name))
