"""What one container of a training job or an endpoint needs (`PodPlan`), and the pod spec for it.

A plan's image is pinned by digest (the one forklift resolved), so every pod of a job or a variant
runs the same bytes. Resources are requests == limits (Guaranteed QoS, as a SageMaker instance is
the container's alone); a GPU count is a limit of `gpu_resource`. Pods get no service-account token
(they never call the API), no service-link env vars, and a security context no more privileged than
docker's default: no privilege escalation, not privileged, the runtime's default seccomp profile,
the runtime's default capabilities (docker's set) less NET_RAW, none added. Data reaches a pod only
through sub-paths of the one claim (`ClaimMount`, `KubeSettings.volume_claim`).
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes.client import (
    V1Capabilities,
    V1Container,
    V1ContainerPort,
    V1EnvVar,
    V1LocalObjectReference,
    V1PersistentVolumeClaimVolumeSource,
    V1PodSecurityContext,
    V1PodSpec,
    V1Probe,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecurityContext,
    V1Volume,
    V1VolumeMount,
)

from forklift.kube.errors import InvalidObject, NotPinned
from forklift.kube.names import is_dns1123_label, is_dns1123_subdomain
from forklift.kube.settings import KubeSettings
from forklift.reference import DOCKER_HUB_API_HOST, InvalidReference, normalize_registry, parse

VOLUME = "forklift-home"  # the pod's one volume: the claim holding FORKLIFT_HOME
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")  # a C identifier and '-', '.': valid on every version
MAX_PORT = 65535


@dataclass(frozen=True)
class ClaimMount:
    sub_path: str  # relative path inside FORKLIFT_HOME (e.g. "jobs/x/input/config"); joined with volume_subpath
    mount_path: str
    read_only: bool = False


@dataclass(frozen=True)
class PodPlan:
    image: str  # pinned: registry/repository@sha256:<64 hex>; anything else is NotPinned
    command: list[str] | None = None  # ContainerEntrypoint (None: the image's ENTRYPOINT)
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None  # requests == limits (Guaranteed QoS)
    memory_bytes: int | None = None
    gpus: int = 0  # limits[gpu_resource]
    mounts: tuple[ClaimMount, ...] = ()
    pull_secret: str | None = None  # name of the dockerconfigjson Secret
    labels: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # 8080 when it serves
    hostname: str | None = None  # "algo-1" for training
    termination_grace_seconds: int | None = None  # SIGTERM -> SIGKILL (None: Kubernetes' 30 s)


def pinned_image(image: str) -> str:
    """`image` as the pod names it: `registry/repository@sha256:<64 hex>`, Docker Hub spelled
    docker.io (the host the kubelet matches docker's Hub credentials to)."""
    try:
        ref = parse(image)
    except InvalidReference as exc:
        raise NotPinned(f"image {image!r} does not parse: {exc}") from None
    if ref.digest is None or not ref.digest.startswith("sha256:"):
        raise NotPinned(f"image {image!r} is not pinned: a pod runs registry/repository@sha256:<64 hex>, the "
                        "digest forklift resolved, so that every pod runs the same bytes")
    if ref.tag is not None:
        raise NotPinned(f"image {image!r} names a tag and a digest: drop the tag (the digest decides)")
    registry = normalize_registry(ref.registry) if ref.registry == DOCKER_HUB_API_HOST else ref.registry
    return f"{registry}/{ref.repository}@{ref.digest}"


def cpu_quantity(cpus: float) -> str:
    """CPUs as a Kubernetes quantity: "4", "500m"."""
    millis = round(cpus * 1000) if math.isfinite(cpus) else 0
    if millis <= 0:
        raise InvalidObject(f"cpus = {cpus!r}: a container needs at least 0.001 CPU (1m)")
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides them: "16Gi", "1536Mi"."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidObject(f"memory_bytes = {size!r}: a container's memory is a positive number of bytes")
    for unit, factor in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def home_path(home: Path, path: Path) -> str:
    """`path` (a directory of a job or endpoint) as a path inside FORKLIFT_HOME, the claim's sub-path
    for `ClaimMount`; `InvalidObject` for one outside it, which no pod can mount."""
    root, source = home.resolve(), path.resolve()
    if not source.is_relative_to(root):
        raise InvalidObject(f"{source} is outside FORKLIFT_HOME ({root}), so no pod can mount it from the shared "
                            "volume")
    return source.relative_to(root).as_posix()


def claim_path(settings: KubeSettings, sub_path: str) -> str:
    """The `subPath` inside the claim for `sub_path` inside FORKLIFT_HOME; never its root, never out of it."""
    parts = sub_path.split("/")
    if sub_path.startswith("/") or ".." in parts or "\0" in sub_path:
        raise InvalidObject(f"mount sub_path {sub_path!r}: a path inside FORKLIFT_HOME is relative and has no '..'")
    inner = posixpath.normpath(sub_path)
    if inner == ".":
        raise InvalidObject("a mount names a directory inside FORKLIFT_HOME, never FORKLIFT_HOME itself")
    return posixpath.normpath(posixpath.join(settings.volume_subpath, inner))


def _volume_mounts(plan: PodPlan, settings: KubeSettings) -> list[V1VolumeMount]:
    if plan.mounts and settings.volume_claim is None:
        raise InvalidObject("pods reach their data through a ReadWriteMany PersistentVolumeClaim holding "
                            "FORKLIFT_HOME: set its name as volume_claim in config.toml's [kubernetes] table")
    seen: set[str] = set()
    for mount in plan.mounts:
        path = mount.mount_path
        if not path.startswith("/") or posixpath.normpath(path) != path or path == "/" or "\0" in path:
            raise InvalidObject(f"mount_path {path!r}: an absolute, normalized directory other than /")
        if path in seen:
            raise InvalidObject(f"mount_path {path!r} is mounted twice")
        seen.add(path)
    # Parents before children (/opt/ml/input before /opt/ml/input/config), whatever order the plan gave.
    ordered = sorted(plan.mounts, key=lambda m: (m.mount_path.count("/"), m.mount_path))
    return [V1VolumeMount(name=VOLUME, mount_path=m.mount_path, sub_path=claim_path(settings, m.sub_path),
                          read_only=m.read_only or None) for m in ordered]


def _resources(plan: PodPlan, settings: KubeSettings) -> V1ResourceRequirements | None:
    amounts: dict[str, str] = {}
    if plan.cpus is not None:
        amounts["cpu"] = cpu_quantity(plan.cpus)
    if plan.memory_bytes is not None:
        amounts["memory"] = memory_quantity(plan.memory_bytes)
    if isinstance(plan.gpus, bool) or not isinstance(plan.gpus, int) or plan.gpus < 0:
        raise InvalidObject(f"gpus = {plan.gpus!r}: a number of GPUs is an integer from 0")
    limits = {**amounts, settings.gpu_resource: str(plan.gpus)} if plan.gpus else dict(amounts)
    if not limits:
        return None
    return V1ResourceRequirements(requests=amounts or None, limits=limits)


def _env(plan: PodPlan) -> list[V1EnvVar] | None:
    for name, value in plan.env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise InvalidObject(f"environment variable name {name!r}: letters, digits, '_', '-' and '.', "
                                "not starting with a digit")
        if not isinstance(value, str):
            raise InvalidObject(f"environment variable {name}: its value must be a string")
    return [V1EnvVar(name=name, value=value) for name, value in plan.env.items()] or None


def _check_plan(plan: PodPlan) -> None:
    for what, argv in (("command", plan.command), ("args", plan.args)):
        if argv is not None and not all(isinstance(a, str) for a in argv):
            raise InvalidObject(f"{what}: a list of strings")
    if plan.pull_secret is not None and not is_dns1123_subdomain(plan.pull_secret):
        raise InvalidObject(f"pull_secret {plan.pull_secret!r} is not a Secret name (a DNS-1123 subdomain)")
    if plan.port is not None and not (isinstance(plan.port, int) and 1 <= plan.port <= MAX_PORT):
        raise InvalidObject(f"port {plan.port!r}: a TCP port from 1 to {MAX_PORT}")
    if plan.hostname is not None and not is_dns1123_label(plan.hostname):
        raise InvalidObject(f"hostname {plan.hostname!r} is not a DNS-1123 label")
    grace = plan.termination_grace_seconds
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
        raise InvalidObject(f"termination_grace_seconds = {grace!r}: a whole number of seconds from 0")


@dataclass(frozen=True)
class Probes:
    startup: V1Probe
    readiness: V1Probe
    liveness: V1Probe


def container(name: str, plan: PodPlan, settings: KubeSettings, *, probes: Probes | None = None) -> V1Container:
    _check_plan(plan)
    return V1Container(
        name=name, image=pinned_image(plan.image), image_pull_policy=settings.image_pull_policy,
        command=plan.command, args=plan.args, env=_env(plan), resources=_resources(plan, settings),
        volume_mounts=_volume_mounts(plan, settings) or None,
        ports=[V1ContainerPort(name="http", container_port=plan.port, protocol="TCP")] if plan.port else None,
        security_context=V1SecurityContext(
            allow_privilege_escalation=False, privileged=False,
            capabilities=V1Capabilities(drop=["NET_RAW"]),
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault")),
        startup_probe=probes.startup if probes else None, readiness_probe=probes.readiness if probes else None,
        liveness_probe=probes.liveness if probes else None)


def pod_spec(container_name: str, plan: PodPlan, settings: KubeSettings, *, restart_policy: str,
             probes: Probes | None = None) -> V1PodSpec:
    main = container(container_name, plan, settings, probes=probes)
    volumes = None
    if plan.mounts:
        assert settings.volume_claim is not None  # container() refused mounts without a claim
        volumes = [V1Volume(name=VOLUME, persistent_volume_claim=V1PersistentVolumeClaimVolumeSource(
            claim_name=settings.volume_claim))]
    return V1PodSpec(
        containers=[main], restart_policy=restart_policy, volumes=volumes, hostname=plan.hostname,
        automount_service_account_token=False, enable_service_links=False,
        service_account_name=settings.service_account,
        node_selector=dict(settings.node_selector) or None,
        image_pull_secrets=[V1LocalObjectReference(name=plan.pull_secret)] if plan.pull_secret else None,
        termination_grace_period_seconds=plan.termination_grace_seconds,
        security_context=V1PodSecurityContext(seccomp_profile=V1SeccompProfile(type="RuntimeDefault")))
