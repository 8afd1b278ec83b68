"""One connection to a Kubernetes cluster: its API client, the namespace forklift works in, and the
few verbs forklift uses (create, read, patch, delete, list by label), each error worded once.

The client is the official `kubernetes` package. Credentials come from `[kubernetes] kubeconfig` /
`context` (or `KUBECONFIG`, or `~/.kube/config`), or from the pod's service account when forklift runs
inside the cluster and names no kubeconfig.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from forklift.kube.errors import KubeError
from forklift.kube.settings import KubeSettings

# Every call to the API server gives up after this long (connect, read), so a cluster that stops
# answering fails the call instead of hanging a job's worker.
REQUEST_TIMEOUT = (10.0, 60.0)
log = logging.getLogger(__name__)
VERBS = ("create", "read", "patch", "delete", "list")
_RBAC_VERBS = {"create": "create", "read": "get", "patch": "patch", "delete": "delete", "list": "list"}
# kind -> (API group, resource) as RBAC names them
RESOURCES = {"Secret": ("", "secrets"), "Service": ("", "services"), "Pod": ("", "pods"), "Job": ("batch", "jobs"),
             "Deployment": ("apps", "deployments"), "NetworkPolicy": ("networking.k8s.io", "networkpolicies")}
FULL = ("create", "get", "patch", "delete", "list", "watch")
# Everything forklift may ask of the API server, in RBAC's words: (API group, resource, verbs). A
# Cluster makes no call outside it (`_granted`), and the Role of deploy/kubernetes/forklift.yaml grants
# exactly this (tests/kube/test_kube_deploy.py), so the Role neither lacks a verb nor grants one more.
# Secrets are never read back: a Role that may get or list them could read every Secret in the namespace.
PERMISSIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("batch", "jobs", FULL),
    ("", "pods", ("get", "list", "watch")),
    ("", "pods/log", ("get",)),
    ("", "secrets", ("create", "patch", "delete")),
    ("networking.k8s.io", "networkpolicies", ("create", "patch", "delete")),
    ("apps", "deployments", FULL),  # endpoints: a Deployment and a Service per variant
    ("", "services", FULL),
)


class ClusterError(KubeError, RuntimeError):
    """The cluster could not be reached or refused a call; the message names the object and why."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the API server's HTTP status, when it answered


def api_client(settings: KubeSettings) -> client.ApiClient:
    """An API client from the kubeconfig the settings name, else in-cluster, else KUBECONFIG/~/.kube/config."""
    configuration = client.Configuration()
    in_cluster = not settings.kubeconfig and "KUBERNETES_SERVICE_HOST" in os.environ
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=settings.kubeconfig, context=settings.context, client_configuration=configuration,
                persist_config=False)
    except (ConfigException, OSError) as exc:
        where = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        source = "in-cluster service account" if in_cluster else where
        raise ClusterError(f"no usable Kubernetes configuration ({source}): {exc}; name one with `forklift serve "
                           "--kubeconfig PATH [--context NAME]` or [kubernetes] kubeconfig in config.toml") from None
    return client.ApiClient(configuration)


def describe(exc: ApiException) -> str:
    """The API server's own message (its Status object) rather than the whole HTTP exchange."""
    import json

    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        status = {}
    message = status.get("message") if isinstance(status, dict) else None
    return f"{exc.status} {exc.reason}: {message}" if message else f"{exc.status} {exc.reason}"


class Cluster:
    """The objects forklift makes, in one namespace."""

    def __init__(self, settings: KubeSettings, api: client.ApiClient | None = None):
        self.settings = settings
        self.namespace = settings.namespace
        self.api = api or api_client(settings)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.networking = client.NetworkingV1Api(self.api)

    def _verb(self, kind: str, verb: str) -> Callable[..., Any]:
        """The client's call for `verb` (one of VERBS) on `kind`, once PERMISSIONS grants it."""
        _granted(*RESOURCES[kind], _RBAC_VERBS[verb])
        apis = {
            "Secret": (self.core, "secret"), "Service": (self.core, "service"), "Pod": (self.core, "pod"),
            "Job": (self.batch, "job"), "Deployment": (self.apps, "deployment"),
            "NetworkPolicy": (self.networking, "network_policy"),
        }
        api, noun = apis[kind]
        call: Callable[..., Any] = getattr(api, f"{verb}_namespaced_{noun}")
        return call

    def watchable(self, kind: str) -> Callable[..., Any]:
        """The list call of `kind`, for a list-then-watch stream (`kube.watch`)."""
        _granted(*RESOURCES[kind], "watch")
        return self._verb(kind, "list")

    def _failed(self, doing: str, kind: str, name: str, exc: ApiException) -> ClusterError:
        return ClusterError(f"{doing} {kind} {name} in namespace {self.namespace} failed: {describe(exc)}", exc.status)

    def create(self, obj: dict[str, Any]) -> Any:
        create = self._verb(obj["kind"], "create")
        try:
            return create(self.namespace, obj, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise self._failed("creating", obj["kind"], obj["metadata"]["name"], exc) from None

    def apply(self, obj: dict[str, Any]) -> Any:
        """Create the object, or patch the one of that name that is already there (a retried start)."""
        create, patch = self._verb(obj["kind"], "create"), self._verb(obj["kind"], "patch")
        try:
            return create(self.namespace, obj, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise self._failed("creating", obj["kind"], obj["metadata"]["name"], exc) from None
        try:
            return patch(obj["metadata"]["name"], self.namespace, obj, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise self._failed("updating", obj["kind"], obj["metadata"]["name"], exc) from None

    def read(self, kind: str, name: str) -> Any | None:
        read = self._verb(kind, "read")
        try:
            return read(name, self.namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._failed("reading", kind, name, exc) from None

    def absent(self, kind: str, name: str) -> bool:
        """True when the API server itself answers that the object is not there; False when it is, and
        when the server cannot be asked (unreachable, refusing): absence is never guessed."""
        try:
            return self.read(kind, name) is None
        except Exception as exc:  # noqa: BLE001 - urllib3's errors as much as the server's: asked again later
            log.debug("reading %s %s: %s", kind, name, exc)
            return False

    def patch(self, kind: str, name: str, body: dict[str, Any]) -> Any:
        patch = self._verb(kind, "patch")
        try:
            return patch(name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise self._failed("updating", kind, name, exc) from None

    def delete(self, kind: str, name: str, grace_seconds: int | None = None) -> bool:
        """Delete it and what it owns (its pods); False when it was not there."""
        delete = self._verb(kind, "delete")
        body = client.V1DeleteOptions(propagation_policy="Background", grace_period_seconds=grace_seconds)
        try:
            delete(name, self.namespace, body=body, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self._failed("deleting", kind, name, exc) from None
        return True

    def remove(self, kinds: tuple[str, ...], name: str, grace_seconds: int | None = None) -> None:
        """Delete the objects of these kinds named `name`, each on its own: one that fails (logged) does
        not keep the others, a pull Secret above all, in the cluster."""
        for kind in kinds:
            try:
                self.delete(kind, name, grace_seconds=grace_seconds if kind in ("Job", "Deployment") else None)
            except ClusterError as exc:
                log.warning("%s; remove it with kubectl -n %s delete %s %s", exc, self.namespace, kind.lower(), name)

    def list(self, kind: str, selector: dict[str, str]) -> list[Any]:
        """Objects whose labels include `selector` (checked here too: a selector the server ignored is no answer)."""
        list_ = self._verb(kind, "list")
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        try:
            items = list_(self.namespace, label_selector=text, _request_timeout=REQUEST_TIMEOUT).items
        except ApiException as exc:
            raise self._failed("listing", kind, "objects", exc) from None
        return [item for item in items if has_labels(item, selector)]

    def pod_log(self, pod: str, container: str, since_seconds: int | None = None, follow: bool = False) -> Any:
        """The pod's log as a streaming urllib3 response (timestamps on, for resuming)."""
        _granted("", "pods/log", "get")
        return self.core.read_namespaced_pod_log(pod, self.namespace, container=container, follow=follow,
                                                 timestamps=True, since_seconds=since_seconds,
                                                 _preload_content=False, _request_timeout=10.0)


def _granted(group: str, resource: str, verb: str) -> None:
    if not any(g == group and r == resource and verb in verbs for g, r, verbs in PERMISSIONS):
        # A bug, not a setting: the call would be refused by the Role forklift's deployment grants.
        raise LookupError(f"forklift does not {verb} {resource} ({group or 'core'}): add it to "
                          "forklift.kube.cluster.PERMISSIONS and to the Role in deploy/kubernetes/forklift.yaml")


def has_labels(obj: Any, selector: dict[str, str]) -> bool:
    labels = (obj.metadata.labels if hasattr(obj, "metadata") else obj.get("metadata", {}).get("labels")) or {}
    return all(labels.get(k) == v for k, v in selector.items())
