"""The Kubernetes objects forklift creates, as plain JSON-ready dicts (what the API takes).

A training job is a `batch/v1` Job of one pod (`restartPolicy: Never`, `backoffLimit: 0`: SageMaker
runs a job once; `activeDeadlineSeconds` from MaxRuntimeInSeconds; no `ttlSecondsAfterFinished`:
forklift deletes the Job itself once it has packed the model). An endpoint's variant is an
`apps/v1` Deployment (one replica per instance; `GET /ping` on 8080 as startup, readiness and
liveness probe) behind a ClusterIP Service. Registry credentials are a dockerconfigjson Secret
(`pullsecrets`), isolation a NetworkPolicy (`netpol`). Every name is checked as the API server
checks it (a DNS-1123 label; a Service's a DNS-1035 label), and so is every label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from kubernetes.client import (
    V1Deployment,
    V1DeploymentSpec,
    V1HTTPGetAction,
    V1Job,
    V1JobSpec,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodTemplateSpec,
    V1Probe,
    V1Service,
    V1ServicePort,
    V1ServiceSpec,
)

from forklift.kube.errors import InvalidObject
from forklift.kube.labels import checked_labels
from forklift.kube.manifests import to_yaml
from forklift.kube.names import MANAGED_BY, is_dns1035_label, is_dns1123_label
from forklift.kube.netpol import network_policy
from forklift.kube.pods import ClaimMount, PodPlan, Probes, pod_spec
from forklift.kube.pullsecrets import pull_secret, redacted
from forklift.kube.serialize import to_dict
from forklift.kube.settings import KubeSettings

__all__ = [
    "SERVING_CONTAINER",
    "SERVING_PORT",
    "TRAINING_CONTAINER",
    "ClaimMount",
    "HealthChecks",
    "PodPlan",
    "deployment",
    "network_policy",
    "pull_secret",
    "redacted",
    "service",
    "service_host",
    "to_yaml",
    "training_job",
]

TRAINING_CONTAINER = "algo"  # the container's name in a training pod (for its logs)
SERVING_CONTAINER = "model"  # ... and in a serving pod
SERVING_PORT = 8080  # SageMaker's: every serving container answers /ping and /invocations here
PING_PATH = "/ping"


@dataclass(frozen=True)
class HealthChecks:
    """How a serving pod's `GET /ping` is probed (control.inference.settings has forklift's defaults)."""

    startup_timeout_seconds: int = 240  # ContainerStartupHealthCheckTimeoutInSeconds (AWS's default)
    period_seconds: int = 2
    failure_threshold: int = 3  # consecutive failures before the pod is unready (and then restarted)
    timeout_seconds: int = 2  # SageMaker: a container answers /ping within 2 seconds

    def probes(self, port: int) -> Probes:
        for name in ("startup_timeout_seconds", "period_seconds", "failure_threshold", "timeout_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidObject(f"health check {name} = {value!r}: a whole number from 1")

        def probe(failures: int) -> V1Probe:
            return V1Probe(http_get=V1HTTPGetAction(path=PING_PATH, port=port), period_seconds=self.period_seconds,
                           timeout_seconds=self.timeout_seconds, failure_threshold=failures)

        # Startup covers the model's load; readiness and liveness start once it has answered.
        startup = probe(max(1, math.ceil(self.startup_timeout_seconds / self.period_seconds)))
        return Probes(startup=startup, readiness=probe(self.failure_threshold), liveness=probe(self.failure_threshold))


def _metadata(kind: str, name: str, labels: dict[str, str], settings: KubeSettings) -> V1ObjectMeta:
    valid = is_dns1035_label(name) if kind == "Service" else is_dns1123_label(name)
    if not valid:
        rule = "a DNS-1035 label (starting with a letter)" if kind == "Service" else "a DNS-1123 label"
        raise InvalidObject(f"{kind} name {name!r} is not {rule} of at most 63 lowercase letters, digits and '-' "
                            "(forklift.kube.names.object_name makes one)")
    return V1ObjectMeta(name=name, namespace=settings.namespace, labels=labels)


def training_job(name: str, plan: PodPlan, settings: KubeSettings, deadline_seconds: int | None) -> dict[str, Any]:
    """A `batch/v1` Job running `plan` once, stopped after `deadline_seconds` (MaxRuntimeInSeconds)."""
    if deadline_seconds is not None and (isinstance(deadline_seconds, bool) or not isinstance(deadline_seconds, int)
                                         or deadline_seconds < 1):
        raise InvalidObject(f"deadline_seconds = {deadline_seconds!r}: a whole number of seconds from 1")
    labels = checked_labels(plan.labels)
    job = V1Job(
        api_version="batch/v1", kind="Job", metadata=_metadata("Job", name, labels, settings),
        spec=V1JobSpec(
            backoff_limit=0, completions=1, parallelism=1, active_deadline_seconds=deadline_seconds,
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=labels),
                spec=pod_spec(TRAINING_CONTAINER, plan, settings, restart_policy="Never"))))
    return to_dict(job)


def deployment(name: str, plan: PodPlan, replicas: int, settings: KubeSettings, *,
               health: HealthChecks | None = None) -> dict[str, Any]:
    """An `apps/v1` Deployment of `replicas` serving pods; its selector is exactly the pods' labels."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise InvalidObject(f"replicas = {replicas!r}: a number of instances from 0")
    if not set(plan.labels) - {MANAGED_BY}:
        # The selector is the labels; managed-by alone would select every forklift pod in the namespace.
        raise InvalidObject("a Deployment's pods need labels naming their variant (forklift.kube.names.variant_labels)")
    labels = checked_labels(plan.labels)
    port = plan.port or SERVING_PORT
    probes = (health or HealthChecks()).probes(port)
    spec = pod_spec(SERVING_CONTAINER, replace(plan, port=port), settings, restart_policy="Always", probes=probes)
    obj = V1Deployment(
        api_version="apps/v1", kind="Deployment", metadata=_metadata("Deployment", name, labels, settings),
        spec=V1DeploymentSpec(replicas=replicas, selector=V1LabelSelector(match_labels=labels),
                              template=V1PodTemplateSpec(metadata=V1ObjectMeta(labels=labels), spec=spec)))
    return to_dict(obj)


def service(name: str, selector: dict[str, str], settings: KubeSettings, *,
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ClusterIP Service on 8080 in front of the pods `selector` picks (labels default to it)."""
    if not set(selector) - {MANAGED_BY}:
        raise InvalidObject("a Service's selector must name its variant's pods (forklift.kube.names.variant_labels)")
    chosen = checked_labels(selector)
    obj = V1Service(
        api_version="v1", kind="Service",
        metadata=_metadata("Service", name, checked_labels(labels if labels is not None else selector), settings),
        spec=V1ServiceSpec(type="ClusterIP", selector=chosen, ports=[
            V1ServicePort(name="http", protocol="TCP", port=SERVING_PORT, target_port=SERVING_PORT)]))
    return to_dict(obj)


def service_host(name: str, settings: KubeSettings) -> str:
    """The DNS name a pod of the cluster reaches Service `name` by."""
    return f"{name}.{settings.namespace}.{settings.service_domain}"
