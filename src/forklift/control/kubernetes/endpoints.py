"""Endpoint variants as Kubernetes Deployments, each behind a Service.

A fleet asks for instances one at a time; here an instance is one replica *slot* of its variant's
Deployment (one per endpoint, variant and generation). The first slot creates the pull Secret, the
Deployment (readiness and liveness on `GET /ping`, port 8080) and the Service; each further slot
raises `replicas`, each stop lowers it, and the last one deletes all three. A slot has an address
(the Service's) only once the Deployment reports that many ready replicas, so the fleet's health
wait is the cluster's readiness, and InvokeEndpoint goes through the Service, which sends requests
only to ready pods. UpdateEndpoint brings up a new generation's Deployment beside the old one and
the fleet switches traffic when it is ready; a pod the cluster cannot start (ErrImagePull,
CrashLoopBackOff, …) ends its variant's slots with the kubelet's message.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from forklift.cancel import NEVER, Cancel, Cancelled
from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.inference.images import image_failure, keychain_for, model_container, provider_arn
from forklift.control.inference.launcher import VariantInstance
from forklift.control.inference.logs import InstanceLogs
from forklift.control.inference.models import EndpointConfigRow, EndpointInstanceRow, EndpointRow, ModelRow
from forklift.control.inference.store import InferenceStore
from forklift.control.kubernetes.pullrefresh import PullSource, SecretRefresher, pull_credentials
from forklift.control.kubernetes.training import instance_resources
from forklift.control.launching import PlatformFailure
from forklift.control.scriptmode import endpoint_container
from forklift.control.settings import control_settings
from forklift.credentials.chain import prefetch
from forklift.kube import names, objects, podstate
from forklift.kube.cluster import Cluster, ClusterError
from forklift.kube.podlogs import PodLogFollower
from forklift.kube.pods import home_path
from forklift.kube.settings import KubeSettings
from forklift.kube.watch import ObjectWatch
from forklift.reference import parse

log = logging.getLogger(__name__)
# A serving container restarts by itself, so one that keeps crashing is stuck too.
STUCK = podstate.WONT_START | {"CrashLoopBackOff"}


@dataclass(frozen=True)
class Variant:
    """One variant's objects in one generation of an endpoint."""

    endpoint: str
    variant: str
    generation: int

    @property
    def name(self) -> str:
        return names.object_name("ep", f"{self.endpoint}-{self.variant}-g{self.generation}")

    @property
    def labels(self) -> dict[str, str]:
        return names.variant_labels(self.endpoint, self.variant, self.generation)


@dataclass(eq=False)
class ReplicaSlot:
    """One instance the fleet counts: a replica of its variant's Deployment."""

    launcher: KubernetesInstanceLauncher
    of: Variant
    index: int  # 0-based; ready once the Deployment has index + 1 ready replicas

    @property
    def name(self) -> str:
        return f"{self.of.name}-{self.index}"

    @property
    def variant(self) -> str:
        return self.of.variant

    @property
    def generation(self) -> int:
        return self.of.generation

    @property
    def address(self) -> str | None:
        return self.launcher.address(self.of, self.index)

    def ended(self) -> str | None:
        return self.launcher.ended(self.of)

    def last_lines(self, count: int = 10) -> str:
        return self.launcher.last_lines(self.of, count)


@dataclass(frozen=True)
class PodOutput:
    """A serving pod's log as the instance log pump reads it: one file copied from the API server."""

    name: str
    stdout_path: Path
    stderr_path: Path


class PodLogs:
    """Every serving pod of a variant forklift runs gets its own log stream (`<variant>/<pod>`), as each
    container does on runc: its log is copied while it runs, and the rest once it is gone."""

    def __init__(self, settings: Settings, cluster: Cluster, watch: ObjectWatch, runs: Callable[[Variant], bool],
                 interval: float = 1.0):
        """`runs(variant)`: whether this server runs it (a pod that merely carries forklift's labels
        gets no stream)."""
        self.settings, self.cluster, self.watch, self.interval = settings, cluster, watch, interval
        self.runs = runs
        self.streams = InstanceLogs(limits=control_settings(settings).log_limits)
        self._followed: dict[str, tuple[Variant, PodOutput, PodLogFollower]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kube-endpoint-logs")
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join(5.0)
        for _, _, follower in self._followed.values():
            follower.stop(1.0)
        self.streams.close()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self._scan()
            except Exception:  # noqa: BLE001 - the next scan tries again
                log.exception("following the serving pods' logs failed")

    def _scan(self) -> None:
        seen = set()
        for pod in self.watch.select("Pod", {names.MANAGED_BY: names.MANAGED_BY_VALUE}):
            labels = pod.metadata.labels or {}
            if names.ENDPOINT not in labels or not podstate.started(pod, objects.SERVING_CONTAINER):
                continue
            name = pod.metadata.name
            seen.add(name)
            if name in self._followed:
                continue
            try:
                of = Variant(labels[names.ENDPOINT], labels[names.VARIANT], int(labels[names.GENERATION]))
            except (KeyError, ValueError):
                continue
            if not self.runs(of):
                continue
            directory = inst.endpoint_dir(self.settings, of.endpoint)
            files = directory / "instances" / name
            files.mkdir(parents=True, exist_ok=True)
            output = PodOutput(name, files / "pod.log", files / "pod.stderr")
            output.stderr_path.touch()
            follower = PodLogFollower(self.cluster, name, objects.SERVING_CONTAINER, output.stdout_path,
                                      finished=lambda: False)
            follower.start()
            self._followed[name] = (of, output, follower)
            self.streams.follow(directory, of.variant, output)  # type: ignore[arg-type]
        for name in set(self._followed) - seen:  # the pod is gone: what it wrote is all there is
            of, output, follower = self._followed.pop(name)
            follower.stop(1.0)
            self.streams.finish(inst.endpoint_dir(self.settings, of.endpoint), of.variant, output)  # type: ignore[arg-type]


def variant_objects(settings: Settings, kube: KubeSettings, endpoint: str, prepared: inst.PreparedVariant,
                    generation: int, replicas: int) -> list[dict]:
    """Secret (when the registry needs one), Deployment and Service, in the order they are created.
    Needs no cluster: this is also what `forklift k8s render --endpoint` shows."""
    of = Variant(endpoint, prepared.name, generation)
    made: list[dict] = []
    secret = None
    if prepared.pull_credentials is not None:
        secret = of.name
        registry = parse(prepared.deployed_image["ResolvedImage"]).registry
        made.append(objects.pull_secret(secret, registry, *prepared.pull_credentials, of.labels, kube))
    container = prepared.container
    mounts = [objects.ClaimMount(home_path(settings.home, prepared.model_dir), "/opt/ml/model", read_only=True)]
    if prepared.code_dir is not None:
        mounts.append(objects.ClaimMount(home_path(settings.home, prepared.code_dir), "/opt/ml/code", read_only=True))
    plan = objects.PodPlan(image=prepared.deployed_image["ResolvedImage"], args=["serve"],
                           env=dict(container.get("Environment") or {}), mounts=tuple(mounts),
                           pull_secret=secret, labels=of.labels, port=objects.SERVING_PORT,
                           hostname=container.get("ContainerHostname"),
                           **instance_resources(prepared.instance_type))
    if prepared.isolated or prepared.vpc:
        # InvokeEndpoint must still reach the model server, from wherever forklift's router runs.
        made.append(objects.network_policy(of.name, of.labels, kube, isolated=prepared.isolated,
                                           serving_port=objects.SERVING_PORT))
    made.append(objects.deployment(of.name, plan, replicas, kube))
    made.append(objects.service(of.name, of.labels, kube))
    return made


def network_of(model: ModelRow) -> dict[str, bool]:
    """The model's network settings, as PreparedVariant takes them."""
    return {"isolated": bool(model.request.get("EnableNetworkIsolation")), "vpc": bool(model.request.get("VpcConfig"))}


def variant_credentials(settings: Settings, model: ModelRow, cancel: Cancel = NEVER) -> tuple[str, str] | None:
    """(username, password) for the model's image's pull Secret, from its credentials chain; None: anonymous.
    A stop (`cancel`) kills a provider function that is running (`Cancelled`)."""
    container = model_container(model.request)
    keychain = keychain_for(settings, container, model.request.get("ExecutionRoleArn"), cancel)
    return pull_credentials(cancel.run(prefetch(keychain, model.resolved_image)), parse(model.resolved_image).registry)


def variant_source(model: ModelRow) -> PullSource:
    """Whom a model's image's credentials are asked of: its provider function and role, never the answer."""
    container = model_container(model.request)
    return PullSource(container["Image"], provider_arn(container), model.request.get("ExecutionRoleArn"))


class KubernetesInstanceLauncher:
    def __init__(self, settings: Settings, kube: KubeSettings, cluster: Cluster, watch: ObjectWatch,
                 store: InferenceStore, refresh_seconds: float | None = None):
        self.settings, self.kube, self.cluster, self.watch, self.store = settings, kube, cluster, watch, store
        self.refresh_seconds = refresh_seconds or kube.secret_refresh_seconds
        self._slots: dict[Variant, list[ReplicaSlot]] = {}
        self._lock = threading.Lock()
        self.logs = PodLogs(settings, cluster, watch, runs=lambda of: of in self._slots)
        # A Deployment's pods pull whenever they are scheduled (scaling, healing, a drained node), so its
        # Secret is renewed for as long as it lives, not only until its first pod has started.
        self._refreshers: dict[Variant, SecretRefresher] = {}
        self._sources: dict[tuple[str, str, int], PullSource] = {}

    # -- once per variant and generation -----------------------------------------------------------
    def prepare(self, directory: Path, variant: dict, model: ModelRow, generation: int,
                endpoint: EndpointRow | None, cancel: Cancel) -> inst.PreparedVariant:
        """The digest CreateModel resolved, the credentials for its pull Secret, the model data on the claim."""
        name = variant["VariantName"]
        container = model_container(model.request)
        resolved = model.resolved_image
        try:
            credentials = variant_credentials(self.settings, model, cancel)
        except Cancelled:
            raise
        except PlatformFailure as exc:
            raise inst.DeployFailure(f"Variant {name}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - the provider, docker's config, ECR: image_failure says which
            inst.record_variant_pull(self.settings, endpoint, resolved, error=exc)
            raise inst.DeployFailure(f"Variant {name}: the image's credentials could not be had: "
                                     f"{image_failure(resolved, exc)}") from exc
        inst.record_variant_pull(self.settings, endpoint, resolved, digest=resolved.rpartition("@")[2])
        if credentials is not None and endpoint is not None:
            self._sources[(endpoint.name, name, generation)] = variant_source(model)
        model_dir = inst.fetch_model_data(self.settings, directory, variant, container, generation, _readable, cancel)
        code_dir = inst.fetch_code(self.settings, directory, variant, container, generation, _readable, cancel)
        return inst.PreparedVariant(name, model.name, endpoint_container(container), None, {}, model_dir,
                                    variant.get("InstanceType"),
                                    {"SpecifiedImage": container["Image"], "ResolvedImage": resolved,
                                     "ResolutionTime": model.resolution_time}, pull_credentials=credentials,
                                    code_dir=code_dir, **network_of(model))

    def render(self, endpoint: str, prepared: inst.PreparedVariant, generation: int, replicas: int) -> list[dict]:
        return variant_objects(self.settings, self.kube, endpoint, prepared, generation, replicas)

    # -- the fleet's instances ---------------------------------------------------------------------
    def start(self, endpoint: str, prepared: inst.PreparedVariant, generation: int) -> VariantInstance:
        of = Variant(endpoint, prepared.name, generation)
        with self._lock:
            slots = self._slots.setdefault(of, [])
            slot = ReplicaSlot(self, of, len(slots))
            try:
                if not slots and self.cluster.read("Deployment", of.name) is None:
                    self._create(of, self.render(endpoint, prepared, generation, replicas=1))
                    self._refresh(of, self._sources.get((endpoint, prepared.name, generation)))
                else:
                    self.cluster.patch("Deployment", of.name, {"spec": {"replicas": len(slots) + 1}})
            except (ClusterError, ValueError) as exc:
                raise inst.DeployFailure(f"Variant {prepared.name}: the cluster did not accept its Deployment: "
                                         f"{exc}") from exc
            slots.append(slot)
        return slot

    def stop(self, endpoint: str, instance: VariantInstance) -> None:
        assert isinstance(instance, ReplicaSlot), "an instance this launcher did not start"
        of = instance.of
        with self._lock:
            slots = [s for s in self._slots.get(of, []) if s is not instance]
            try:
                if slots:
                    for index, slot in enumerate(slots):
                        slot.index = index
                    self._slots[of] = slots
                    self.cluster.patch("Deployment", of.name, {"spec": {"replicas": len(slots)}})
                else:
                    self._slots.pop(of, None)
                    self._delete(of)
            except ClusterError as exc:
                log.warning("endpoint %s: scaling down variant %s failed: %s", endpoint, of.variant, exc)

    def _create(self, of: Variant, made: list[dict]) -> None:
        """All of a variant's objects, or none: a half-made variant would be scaled, never completed."""
        applied: list[str] = []
        try:
            for obj in made:
                self.cluster.apply(obj)
                applied.append(obj["kind"])
        except ClusterError:
            self.cluster.remove(tuple(applied), of.name)
            raise

    def _delete(self, of: Variant) -> None:
        refresher = self._refreshers.pop(of, None)
        if refresher is not None:
            refresher.stop()
        self.cluster.remove(("Deployment", "Service", "Secret", "NetworkPolicy"), of.name)

    def _refresh(self, of: Variant, source: PullSource | None) -> None:
        if source is None or of in self._refreshers:
            return
        self._refreshers[of] = SecretRefresher(self.cluster, self.kube, self.settings, of.name, source,
                                               self.refresh_seconds, done=lambda: of not in self._slots).start()

    def adopt(self, endpoint: str, keep: Callable[[EndpointInstanceRow], bool],
              skip: Collection[str] = ()) -> list[VariantInstance]:
        adopted: list[VariantInstance] = []
        for deployment in self.cluster.list("Deployment", {names.ENDPOINT: names.label_value(endpoint)}):
            labels = deployment.metadata.labels or {}
            try:
                of = Variant(endpoint, labels[names.VARIANT], int(labels[names.GENERATION]))
            except (KeyError, ValueError):
                continue
            row = EndpointInstanceRow(container_name=deployment.metadata.name, endpoint=endpoint, variant=of.variant,
                                      generation=of.generation, address=None, created_at=0.0)
            with self._lock:
                known = self._slots.get(of, [])
                if any(slot.name in skip for slot in known):
                    continue
                if not keep(row):
                    self._slots.pop(of, None)
                    self._delete(of)
                    continue
                slots = [ReplicaSlot(self, of, i) for i in range(deployment.spec.replicas or 0)]
                self._slots[of] = slots
                if deployment.spec.template.spec.image_pull_secrets:
                    self._refresh(of, self._adopted_source(of))
            adopted.extend(slots)
        return adopted

    def _adopted_source(self, of: Variant) -> PullSource | None:
        """Whom to ask for an adopted variant's credentials: its model, as the endpoint's store has it."""
        endpoint = self.store.get(EndpointRow, of.endpoint)
        config = self.store.get(EndpointConfigRow, endpoint.config_name) if endpoint else None
        variants = (config.request["ProductionVariants"] if config else [])
        model_name = next((v["ModelName"] for v in variants if v["VariantName"] == of.variant), None)
        model = self.store.get(ModelRow, model_name) if model_name else None
        return variant_source(model) if model is not None else None

    def close(self) -> None:
        """Stop copying logs and renewing Secrets; the Deployments keep serving for the next server to adopt."""
        self.logs.close()
        for refresher in self._refreshers.values():
            refresher.stop()

    # -- what the slots read from the watch ---------------------------------------------------------
    def address(self, of: Variant, index: int) -> str | None:
        deployment = self.watch.get("Deployment", of.name)
        service = self.watch.get("Service", of.name)
        if deployment is None or service is None or deployment.status is None:
            return None
        if (deployment.status.ready_replicas or 0) <= index:
            return None
        cluster_ip = service.spec.cluster_ip if service.spec else None
        if cluster_ip and cluster_ip != "None":
            return cluster_ip
        return objects.service_host(of.name, self.kube)

    def ended(self, of: Variant) -> str | None:
        if self.watch.get("Deployment", of.name) is None and self.watch.synced("Deployment", 0) \
                and self.cluster.absent("Deployment", of.name):
            return f"the Deployment {of.name} was deleted outside forklift"
        for pod in self.watch.select("Pod", of.labels):
            waiting = podstate.waiting(pod, objects.SERVING_CONTAINER)
            if waiting is not None and waiting[0] in STUCK:
                return (f"the cluster could not run the model container of pod {pod.metadata.name} "
                        f"({waiting[0]}): {waiting[1]}").rstrip(": ")
        return None

    def last_lines(self, of: Variant, count: int = 10) -> str:
        for pod in self.watch.select("Pod", of.labels):
            try:
                return str(self.cluster.core.read_namespaced_pod_log(
                    pod.metadata.name, self.cluster.namespace, container=objects.SERVING_CONTAINER,
                    tail_lines=count, _request_timeout=10.0)).rstrip("\n")
            except Exception:  # noqa: BLE001 - no log yet: no lines to show
                continue
        return ""


def _readable(model_dir: Path) -> None:
    """The image's User is known only to the cluster's runtime: whoever it is may read the model."""
    for root, dirs, files in os.walk(model_dir, followlinks=False):
        for entry in (*dirs, *files):
            path = os.path.join(root, entry)
            if not os.path.islink(path):
                mode = os.lstat(path).st_mode
                os.chmod(path, mode | 0o444 | (0o111 if entry in dirs else 0))
    os.chmod(model_dir, 0o755)
