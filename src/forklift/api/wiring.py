"""The composition root of `forklift serve`: a control plane, and the API's handlers registered on it.

It sits above everything it wires: the handler modules (`training`, `inference`, `invoke`) only
register themselves in the `ApiServices` they are given.
"""

from __future__ import annotations

import ipaddress

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
from forklift.storage.embedded import EmbeddedBuckets


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


def s3_virtual_hosts(settings: Settings, host: str | None = None) -> tuple[str, ...]:
    """The names `<bucket>.<name>` Host headers are virtual-host style S3 requests under: `localhost`,
    config.toml's `[server] s3_virtual_host_suffixes`, and the host name the server binds (never an IP)."""
    names = ["localhost", *read_config_file(settings.home)[1].get("server", {}).get("s3_virtual_host_suffixes", [])]
    if host:
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            names.append(host)
    return tuple(dict.fromkeys(name.lower().strip(".") for name in names if name.strip(".")))


def build_services(settings: Settings, region: str, account: str, backend: Backend | None = None,
                   kube: KubeSettings | None = None, host: str | None = None) -> ApiServices:
    """The services `forklift serve` runs, on `backend` (default: runc on this machine); `forklift k8s
    render` answered with `kube` (default: config.toml's `[kubernetes]`), whatever the backend; the
    embedded bucket store served as S3, virtual-host style also under `host` when it is a name."""
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
    # The embedded store is served even when s3_endpoint_url names an external S3: its files are still
    # the ones `forklift buckets` keeps under FORKLIFT_HOME, and clients that want the external S3 talk to it.
    services.buckets_root = EmbeddedBuckets.from_settings(settings).root
    services.s3_virtual_hosts = s3_virtual_hosts(settings, host)
    return services
