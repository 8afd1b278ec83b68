"""Training jobs as Kubernetes Jobs.

    obtain   the tag resolved to a digest with the job's credentials chain (provider functions
             included), as a pull would; the credentials kept in memory for the pull Secret, and how
             to ask for them again (`pullrefresh.PullSource`)
    start    a `kubernetes.io/dockerconfigjson` Secret (when the registry needs credentials), a
             NetworkPolicy (EnableNetworkIsolation or VpcConfig), then the `batch/v1` Job: the image
             pinned by that digest, the job's directories mounted from the shared claim; until the
             pod's container starts, the Secret is renewed every `secret_refresh_seconds`
    handle   the Job and its pod as the watch streams last saw them: how the container ended (exit
             code, OOMKilled, the Job's DeadlineExceeded, an image the cluster could not pull), its
             log copied into the job's directory for the log pump; stop deletes every object

The runner stages config and channels, waits, packs `/opt/ml/model` and uploads it exactly as on
runc: the files are on the claim the server and the pods share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forklift.cancel import NEVER, Cancel, Cancelled
from forklift.config import Settings
from forklift.control import outcome, staging
from forklift.control.instance_types import check_instance_type
from forklift.control.kubernetes.pullrefresh import PullSource, SecretRefresher, pull_credentials
from forklift.control.launching import ObtainedImage, PlatformFailure, TrainingContainer
from forklift.control.locallaunch import training_provider
from forklift.control.logs import job_dir
from forklift.control.models import TrainingJobRow
from forklift.control.runner import DEADLINE_EXCEEDED
from forklift.control.settings import control_settings
from forklift.credentials import Credentials
from forklift.credentials.chain import prefetch
from forklift.images.progress import TransferProgress
from forklift.kube import names, objects, podstate
from forklift.kube.cluster import Cluster, ClusterError
from forklift.kube.podlogs import PodLogFollower
from forklift.kube.pods import home_path
from forklift.kube.settings import KubeSettings
from forklift.kube.watch import ObjectWatch
from forklift.reference import parse
from forklift.registry import RegistryClient
from forklift.runtime import ExitStatus, skip_released

log = logging.getLogger(__name__)
CONTAINER = objects.TRAINING_CONTAINER
GIB = 1024**3
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
POD_GRACE = 5.0  # how long a finished Job's pod may lag behind it in the watches' view
STOP_MARGIN = 15.0  # a stopped pod's grace period, and this, is how long a stop waits for it to end


def instance_resources(instance_type: str | None) -> dict[str, Any]:
    """A PodPlan's cpus, memory and GPUs: the instance type's own figures (a node is sized for it, not
    this machine)."""
    if not instance_type:
        return {}
    entry = check_instance_type(instance_type)
    return {"cpus": float(entry.vcpu), "memory_bytes": int(entry.memory_gib * GIB), "gpus": entry.gpus}


def stop_grace(settings: Settings) -> int:
    """A stopped pod's grace period, SIGTERM to SIGKILL: the server's stop_grace_seconds, as on runc."""
    return int(control_settings(settings).stop_grace_seconds)


def job_object_name(container_name: str) -> str:
    """The Job's name for the runner's container name (`tj-<job>-<8 hex>`)."""
    return names.object_name("tj", container_name.removeprefix("tj-"))


@dataclass(frozen=True)
class PullSecretPlan:
    """What `obtain` hands `start`: the credentials for the Secret (None: anonymous), and their source."""

    credentials: tuple[str, str] | None = field(repr=False)
    source: PullSource


def refuse_pipe(request: dict) -> None:
    """Pipe mode has no FIFO that crosses nodes: such a job cannot run on this backend."""
    if any(staging.input_mode(request, c) == "Pipe" for c in request.get("InputDataConfig") or []):
        raise PlatformFailure("ClientError: Pipe input mode is not available on forklift's Kubernetes runtime "
                              "(a FIFO on a shared volume does not cross nodes); use File or FastFile")


def pull_source(row: TrainingJobRow) -> PullSource:
    """How the job's registry credentials are asked for (again, by `pullrefresh`)."""
    request = row.request
    return PullSource(request["AlgorithmSpecification"]["TrainingImage"], training_provider(request),
                      request.get("RoleArn"))


def obtain_image(settings: Settings, row: TrainingJobRow, digest: str | None = None,
                 cancel: Cancel = NEVER) -> ObtainedImage:
    """The job's image as its pod pulls it: the tag resolved to a digest with the job's credentials chain
    (provider functions included), as a pull would, and the credentials for its pull Secret. With
    `digest` (the job resolved it already) only the credentials are looked up. A stop (`cancel`) gives
    it up with `Cancelled`."""
    request = row.request
    image = request["AlgorithmSpecification"]["TrainingImage"]
    refuse_pipe(request)
    ref = parse(image)

    async def resolve() -> tuple[str, Credentials]:
        keychain = await asyncio.to_thread(pull_source(row).keychain, settings, cancel)
        credentials = await prefetch(keychain, image)
        if digest is not None:
            return digest, credentials
        async with RegistryClient(ref.registry, keychain=keychain, settings=settings, max_retries=1) as client:
            return (await client.resolve(ref)).digest, credentials

    try:
        found, credentials = cancel.run(resolve())
    except Cancelled:
        raise
    except Exception as exc:
        raise PlatformFailure(outcome.pull_failure(image, exc)) from exc
    return ObtainedImage(found, pull_credentials(credentials, ref.registry))


def training_objects(settings: Settings, kube: KubeSettings, container: TrainingContainer,
                     credentials: tuple[str, str] | None) -> list[dict]:
    """Secret (when the registry needs credentials), NetworkPolicy (when asked for), Job — in the order
    they are created. Needs no cluster: this is also what `forklift k8s render` shows."""
    job_name = job_object_name(container.name)
    labels = names.training_labels(container.job)
    made: list[dict] = []
    secret = None
    if credentials is not None:
        secret = job_name
        made.append(objects.pull_secret(secret, parse(container.image).registry, *credentials, labels, kube))
    if container.isolated or container.vpc:
        # One attempt of a job runs at a time, so its job label selects exactly its pod.
        made.append(objects.network_policy(job_name, names.training_labels(container.job), kube,
                                           isolated=container.isolated))
    plan = objects.PodPlan(image=container.resolved_image, command=container.entrypoint, args=container.args,
                           env=container.env, mounts=tuple(_claim_mounts(settings, container)), pull_secret=secret,
                           labels=labels, hostname=container.hostname, termination_grace_seconds=stop_grace(settings),
                           **instance_resources(container.instance_type))
    made.append(objects.training_job(job_name, plan, kube, container.max_runtime_seconds))
    return made


def _claim_mounts(settings: Settings, container: TrainingContainer) -> Iterator[objects.ClaimMount]:
    for mount in container.mounts:
        yield objects.ClaimMount(home_path(settings.home, Path(mount.source)), mount.destination, mount.read_only)


def _open_to_the_pod(code: Path) -> None:
    """Script mode's staged code, readable and writable by the pod's user whoever it is (the toolkit may
    install it in place), as runc's launcher hands it to the image's User: the archive's own modes may
    make files private to the server."""
    for root, dirs, files in os.walk(code, followlinks=False):
        for entry in (*dirs, *files):
            path = os.path.join(root, entry)
            if not os.path.islink(path):
                os.chmod(path, os.lstat(path).st_mode | (0o777 if entry in dirs else 0o666))
    os.chmod(code, 0o777)  # noqa: S103 - reachable only through this job's pod and the server


class KubernetesTrainingLauncher:
    limits_capacity = False  # the cluster schedules; a pod waiting for room shows as Pending

    def __init__(self, settings: Settings, kube: KubeSettings, cluster: Cluster, watch: ObjectWatch,
                 refresh_seconds: float | None = None):
        self.settings, self.kube, self.cluster, self.watch = settings, kube, cluster, watch
        # [kubernetes] secret_refresh_seconds unless given (a test's shorter interval)
        self.refresh_seconds = refresh_seconds or kube.secret_refresh_seconds

    def obtain(self, row: TrainingJobRow, progress: TransferProgress, cancel: Cancel) -> ObtainedImage:
        obtained = obtain_image(self.settings, row, cancel=cancel)
        return ObtainedImage(obtained.digest, PullSecretPlan(obtained.prepared, pull_source(row)))

    def render(self, container: TrainingContainer, credentials: tuple[str, str] | None) -> list[dict]:
        """Secret (when needed), NetworkPolicy (when asked for), Job — in the order they are created."""
        return training_objects(self.settings, self.kube, container, credentials)

    def start(self, container: TrainingContainer, obtained: ObtainedImage) -> KubeJobHandle:
        paths = staging.job_paths(container.directory)
        for writable in (paths["model"], paths["output"], paths["output"] / "data"):
            # The image's User is known only to the cluster's runtime: whoever it is may write its outputs.
            os.chmod(writable, 0o777)  # noqa: S103 - reachable only through this job's pod and the server
        if any(mount.source == paths["code"] for mount in container.mounts):
            _open_to_the_pod(paths["code"])
        plan: PullSecretPlan = obtained.prepared
        applied: list[dict] = []
        try:
            made = self.render(container, plan.credentials)
            # kept only while there is a Secret to renew: the adopting server renews when it finds one
            plan.source.save(staging.job_paths(container.directory)["container"], keep=plan.credentials is not None)
            for obj in made:
                self.cluster.apply(obj)
                applied.append(obj)
        except (ClusterError, ValueError) as exc:
            if applied:  # a Secret with the registry's credentials must not outlive a Job never made
                self.cluster.remove(tuple(o["kind"] for o in applied), applied[0]["metadata"]["name"])
            raise PlatformFailure(f"InternalServerError: the cluster did not accept the training job: {exc}") from exc
        handle = KubeJobHandle(self, made[-1]["metadata"]["name"], container.directory)
        handle.follow_logs()
        if plan.credentials is not None:
            handle.refresh_pull_secret(plan.source)
        return handle

    def adopt(self, name: str) -> KubeJobHandle | None:
        job = self.cluster.read("Job", job_object_name(name))
        if job is None:
            # the server stopped between the Secret and the Job, or the Job was deleted: nothing is left to run
            self.cluster.remove(("Secret", "NetworkPolicy"), job_object_name(name))
            return None
        training_job = (job.metadata.labels or {}).get(names.TRAINING_JOB)
        if not training_job:
            return None
        handle = KubeJobHandle(self, job.metadata.name, job_dir(self.settings.home, training_job))
        handle.follow_logs()
        # (forklift may not read Secrets back: the saved source says there is one)
        source = PullSource.load(staging.job_paths(handle.directory)["container"])
        if source is not None:
            handle.refresh_pull_secret(source)
        return handle


class KubeJobHandle:
    """A Job forklift made, as a `ContainerHandle`."""

    address = None
    pid = None

    def __init__(self, launcher: KubernetesTrainingLauncher, name: str, directory: Path):
        self.launcher, self.name, self.directory = launcher, name, directory
        container_dir = staging.job_paths(directory)["container"]
        container_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = container_dir / "pod.log"
        self.stderr_path = container_dir / "pod.stderr"  # the API server serves one merged stream
        self.stderr_path.touch()
        self._logs: PodLogFollower | None = None
        self.refresher: SecretRefresher | None = None
        self._log_starter: threading.Thread | None = None
        self._finished_seen: float | None = None
        self._stopping = threading.Event()
        self._ended: ExitStatus | None = None
        self._created = time.monotonic()

    # -- state ---------------------------------------------------------------------------------
    def _pod(self) -> Any | None:
        for label in JOB_NAME_LABELS:
            pods = self.launcher.watch.select("Pod", {label: self.name})
            if pods:
                return max(pods, key=lambda p: p.metadata.creation_timestamp or 0)
        return None

    def _exit(self) -> ExitStatus | None:
        if self._ended is not None:
            return self._ended
        job = self.launcher.watch.get("Job", self.name)
        if job is None:
            if self.launcher.watch.synced("Job", 0) and time.monotonic() - self._created > 5 and \
                    self.launcher.cluster.absent("Job", self.name):
                return ExitStatus(-1, reason="lost", message=f"the Job {self.name} was deleted outside forklift")
            return None
        pod = self._pod()
        terminated = podstate.terminated(pod, CONTAINER)
        if pod is None and self._finished(job) and not self._waited_for_pod():
            return None  # each kind has its own watch: the pod's last state may be a moment behind the Job's
        for condition in (job.status.conditions if job.status else None) or []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                return ExitStatus(terminated[0] if terminated else 0, reason="completed")
            if condition.type == "Failed":
                if condition.reason == "DeadlineExceeded":
                    return ExitStatus(137, signal=9, reason=DEADLINE_EXCEEDED,
                                      message=condition.message or "activeDeadlineSeconds exceeded")
                if terminated:
                    break
                return ExitStatus(-1, reason=outcome.PLATFORM_ERROR,
                                  message=f"AlgorithmError: the Job {self.name} failed: {condition.reason}: "
                                          f"{condition.message or ''}".rstrip(": "))
        if terminated:
            code, reason, message = terminated
            if reason == "OOMKilled":
                return ExitStatus(code or 137, oom_killed=True, reason="oom-killed", message=message)
            return ExitStatus(code, reason="completed" if code == 0 else "failed", message=message)
        waiting = podstate.waiting(pod, CONTAINER)
        if waiting and waiting[0] in podstate.WONT_START:
            image = self._image(job)
            return ExitStatus(-1, reason=outcome.PLATFORM_ERROR,
                              message=f"ClientError: the cluster could not start the training image {image} "
                                      f"({waiting[0]}): {waiting[1]}"[:1024])
        return None

    @staticmethod
    def _finished(job: Any) -> bool:
        return any(c.status == "True" and c.type in ("Complete", "Failed")
                   for c in (job.status.conditions if job.status else None) or [])

    def _waited_for_pod(self) -> bool:
        """True once the Job has been seen finished for POD_GRACE seconds (its pod may be gone for good)."""
        now = time.monotonic()
        self._finished_seen = self._finished_seen or now
        return now - self._finished_seen >= POD_GRACE

    @staticmethod
    def _image(job: Any) -> str:
        try:
            return job.spec.template.spec.containers[0].image
        except (AttributeError, IndexError):
            return "?"

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        status = self.launcher.watch.wait(self._exit, timeout)
        if status is not None and self._ended is None:
            self._ended = status
        return status

    def is_running(self) -> bool:
        return self.wait(0) is None

    def stop(self, grace: float = 10.0) -> ExitStatus:
        """Delete the Job, its Secret and NetworkPolicy. A running pod gets its grace period (the pod
        spec's, the server's stop_grace_seconds) and is waited for, bounded, so the model and the log
        are whole before the runner packs them."""
        status = self.wait(0)
        if self.refresher is not None:
            self.refresher.stop()
        if status is None:  # a stop: SIGTERM, the grace period, and then what the container left
            self.launcher.cluster.remove(("Job",), self.name, grace_seconds=int(grace))
            self.launcher.watch.wait(lambda: self._pod() is None or podstate.terminated(self._pod(), CONTAINER),
                                     grace + STOP_MARGIN)
            status = self._ended = ExitStatus(143, signal=15, reason="stopped", message="stopped: the Job was deleted")
        self._stopping.set()
        if self._log_starter is not None:
            self._log_starter.join(10.0)  # an ended pod's log is copied whole before the pod goes
        if self._logs is not None:
            self._logs.finish()
        self.launcher.cluster.remove(("Job", "Secret", "NetworkPolicy"), self.name)
        return status

    # -- the pull Secret --------------------------------------------------------------------------
    def refresh_pull_secret(self, source: PullSource) -> None:
        """Renew the Secret (named as the Job) from `source` until the container has started or the job ended."""
        def pulled() -> bool:
            pod = self._pod()
            return podstate.started(pod, CONTAINER) or self.wait(0) is not None

        launcher = self.launcher
        self.refresher = SecretRefresher(launcher.cluster, launcher.kube, launcher.settings, self.name, source,
                                         launcher.refresh_seconds, pulled).start()

    # -- logs ----------------------------------------------------------------------------------
    def follow_logs(self) -> None:
        """Once the pod's container has started, copy its log (in the background) for the log pump."""
        def started() -> tuple[str | None] | None:
            pod = self._pod()
            if podstate.started(pod, CONTAINER):
                return (pod.metadata.name,)
            return (None,) if self._exit() is not None else None  # ended without ever running

        def run() -> None:
            found = None
            while found is None:  # asked again each second: the pod may never change once the Job has ended
                if self.launcher.watch.closed or (self._stopping.is_set() and self._ended is None):
                    return
                found = self.launcher.watch.wait(started, 1.0)
            (pod,) = found
            if pod is None:
                return
            self._logs = PodLogFollower(self.launcher.cluster, pod, CONTAINER, self.stdout_path,
                                        finished=lambda: self._stopping.is_set() or
                                        podstate.terminated(self._pod(), CONTAINER) is not None)
            self._logs.start()

        self._log_starter = threading.Thread(target=run, daemon=True, name=f"kube-logs-{self.name}")
        self._log_starter.start()

    def logs(self, follow: bool = False) -> Iterator[str]:
        try:
            with open(self.stdout_path, "rb") as f:
                skip_released(f)  # the log pump may have given the copied part's blocks back
                yield from (line.decode(errors="replace").rstrip("\n") for line in f)
        except FileNotFoundError:
            return
