"""The composition root of `forklift serve`: a control plane, and the API's handlers registered on it.

It sits above everything it wires: the handler modules (`training`, `inference`, `invoke`) only
register themselves in the `ApiServices` they are given.
"""

from __future__ import annotations

from forklift.api import inference, invoke, tagging, training
from forklift.api.authn import KeyAuthenticator
from forklift.api.services import ApiServices
from forklift.audit import AuditLog
from forklift.config import Settings, read_config_file
from forklift.control.backend import Backend, LocalBackend
from forklift.control.manifests import KubeManifests
from forklift.control.plane import ControlPlane
from forklift.credentials.accesskeys import AccessKeys
from forklift.kube.settings import KubeSettings, kube_settings


def server_kube_settings(settings: Settings, *, namespace: str | None = None, kubeconfig: str | None = None,
                         context: str | None = None) -> KubeSettings:
    """config.toml's `[kubernetes]` with `forklift serve`'s flags applied: what the server runs on, and renders with."""
    return kube_settings(settings).with_overrides(namespace=namespace, kubeconfig=kubeconfig, context=context)


def select_backend(settings: Settings, runtime: str | None = None, *, namespace: str | None = None,
                   kubeconfig: str | None = None, context: str | None = None) -> Backend:
    """The backend `runtime` names (else config.toml's `runtime`, else runc), connected and ready."""
    chosen = runtime or read_config_file(settings.home)[1].get("runtime") or "runc"
    if chosen != "kubernetes":
        return LocalBackend()
    from forklift.control.kubernetes import KubernetesBackend  # the kubernetes client, only when it is used

    kube = server_kube_settings(settings, namespace=namespace, kubeconfig=kubeconfig, context=context)
    return KubernetesBackend(settings, kube)


def build_services(settings: Settings, region: str, account: str, backend: Backend | None = None,
                   kube: KubeSettings | None = None) -> ApiServices:
    """The services `forklift serve` runs, on `backend` (default: runc on this machine); `forklift k8s
    render` answered with `kube` (default: config.toml's `[kubernetes]`), whatever the backend."""
    services = ApiServices(region=region, account=account)
    plane = ControlPlane.create(settings, backend=backend)
    training.install(services, plane)
    inference.install(services, plane.inference)
    invoke.install(services, plane.inference.router, plane.invocations)
    tagging.install(services, plane.tags)
    services.log_source = plane.log_source()
    services.metrics = plane.metrics
    services.authenticate = KeyAuthenticator(AccessKeys(settings))
    services.audit = AuditLog(settings.home)
    services.manifests = KubeManifests(settings, plane.store, kube or kube_settings(settings))
    return services
