"""One variant's containers: prepare the image and model once, start instances, check `/ping`.

    prepared = prepare_variant(settings, directory, variant, model)   # pull by digest + model.tar.gz
    handle = start_instance(runtime, prepared, endpoint, directory, instance_name())  # `serve`, port 8080
    ping(handle.address)                                              # GET /ping, 2 s timeout
    last_lines(handle)                                                # for a FailureReason

Files live under `$FORKLIFT_HOME/endpoints/<endpoint>/`: `events.log` (what the fleet did),
`<variant>-g<generation>/model` (extracted once, mounted read-only in every instance; downloaded into
a `.downloading-*` directory of its own first), `<variant>-g<generation>/code` (script mode: the
archive SAGEMAKER_SUBMIT_DIRECTORY names, unpacked once the same way and mounted read-only at
/opt/ml/code, the variable then naming that; `control.scriptmode`),
`instances/<container>/` (each container's state and stdout/stderr) and `logs/` (the same events and
output as CloudWatch log streams, see `logs`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from forklift import labels
from forklift.cancel import NEVER, Cancel, Cancelled
from forklift.config import Settings
from forklift.control.inference.images import image_failure, keychain_for, model_container
from forklift.control.inference.logs import record_fleet_event
from forklift.control.inference.models import EndpointRow, ModelRow
from forklift.control.instance_types import UnknownInstanceType, resolve_instance_type
from forklift.control.pullaudit import record_pull
from forklift.control.scriptmode import ENVIRONMENT, SourceCodeError, endpoint_code_uri, endpoint_container, stage_code
from forklift.fslock import locked
from forklift.images.imagestore import ImageStore
from forklift.images.rootfs import pull_and_prepare
from forklift.runtime import ContainerHandle, ContainerSpec, Mount, Runtime, SpecError, hand_over_tree
from forklift.runtime.users import resolve as resolve_user
from forklift.runtime.users import spec_user
from forklift.storage import download_stoppable, extract_tar_gz, store_for

PING_TIMEOUT = 2.0
DEFAULT_DOWNLOAD_TIMEOUT = 3600.0  # SageMaker's maximum ModelDataDownloadTimeoutInSeconds
_pinger = httpx.Client(timeout=PING_TIMEOUT, trust_env=False)
_DOWNLOADING = ".downloading-"  # a model download's own directory, beside the generations'


class DeployFailure(Exception):
    """A variant could not be brought up; the message is the endpoint's FailureReason."""


def endpoint_dir(settings: Settings, endpoint: str) -> Path:
    return settings.home / "endpoints" / endpoint


def log_event(directory: Path, message: str) -> None:
    """One fleet event: a line of `events.log`, and an event of the `fleet-events` log stream."""
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    with open(directory / "events.log", "a") as f:
        f.write(f"{stamp}Z {message}\n")
    record_fleet_event(directory, message, now)


@dataclass(frozen=True)
class PreparedVariant:
    name: str
    model_name: str
    container: dict  # the model's container definition
    rootfs: Path | None  # the unpacked image where the launcher runs it here; None where a cluster pulls it
    image_config: dict
    model_dir: Path
    instance_type: str | None
    deployed_image: dict  # {SpecifiedImage, ResolvedImage, ResolutionTime}
    pull_credentials: tuple[str, str] | None = field(default=None, repr=False)  # for a cluster's pull Secret
    isolated: bool = False  # the model's EnableNetworkIsolation
    vpc: bool = False  # the model has a VpcConfig
    code_dir: Path | None = None  # script mode: the staged code, mounted at /opt/ml/code


def prepare_variant(settings: Settings, directory: Path, variant: dict, model: ModelRow, generation: int,
                    endpoint: EndpointRow | None = None, cancel: Cancel = NEVER) -> PreparedVariant:
    """Pull the model's image (by the digest resolved at CreateModel) and extract its model data; the
    pull is audited under the `endpoint`'s owner. A stop (`cancel`: DeleteEndpoint) gives either up
    with `Cancelled`."""
    name = variant["VariantName"]
    container = model_container(model.request)
    resolved = model.resolved_image
    try:
        keychain = keychain_for(settings, container, model.request.get("ExecutionRoleArn"), cancel)
        prepared = cancel.run(pull_and_prepare(resolved, ImageStore(settings), keychain=keychain))
    except Exception as exc:
        record_variant_pull(settings, endpoint, resolved, error=exc)
        if isinstance(exc, Cancelled):
            raise
        raise DeployFailure(f"Variant {name}: the image could not be pulled: {image_failure(resolved, exc)}") from exc
    record_variant_pull(settings, endpoint, resolved, digest=prepared.image.digest)
    def hand_over(path: Path) -> None:
        _hand_model_to_the_image_user(path, prepared.rootfs, prepared.config)
    model_dir = fetch_model_data(settings, directory, variant, container, generation, hand_over, cancel)
    code_dir = fetch_code(settings, directory, variant, container, generation, hand_over, cancel)
    return PreparedVariant(name, model.name, endpoint_container(container), prepared.rootfs, prepared.config,
                           model_dir, variant.get("InstanceType"),
                           {"SpecifiedImage": container["Image"], "ResolvedImage": resolved,
                            "ResolutionTime": model.resolution_time}, code_dir=code_dir)


def fetch_model_data(settings: Settings, directory: Path, variant: dict, container: dict, generation: int,
                     hand_over: Callable[[Path], None], cancel: Cancel = NEVER) -> Path:
    """The variant's model data extracted once per generation (`hand_over` then gives it to the
    image's user); returns the directory every instance mounts at /opt/ml/model. `Cancelled` on a stop."""
    name = variant["VariantName"]
    model_dir = directory / f"{name}-g{generation}" / "model"
    url = container.get("ModelDataUrl")
    marker = model_dir.parent / "extracted"  # holds the URL: a re-created endpoint may reuse the name
    if url and not (marker.exists() and marker.read_text() == url):
        limit = float(variant.get("ModelDataDownloadTimeoutInSeconds") or DEFAULT_DOWNLOAD_TIMEOUT)
        _download_with_limit(settings, url, model_dir, name, limit, cancel)
        hand_over(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    return model_dir


def fetch_code(settings: Settings, directory: Path, variant: dict, container: dict, generation: int,
               hand_over: Callable[[Path], None], cancel: Cancel = NEVER) -> Path | None:
    """Script mode: the archive the container's SAGEMAKER_SUBMIT_DIRECTORY names, unpacked once per
    generation beside its model data (after it: putting the model in place replaces the generation's
    directory); None when there is none to stage. `Cancelled` on a stop."""
    uri = endpoint_code_uri(container)
    if uri is None:
        return None
    name = variant["VariantName"]
    generation_dir = directory / f"{name}-g{generation}"
    code_dir, marker = generation_dir / "code", generation_dir / "code-extracted"
    if marker.exists() and marker.read_text() == uri:
        return code_dir  # instances may be serving from it: never unpacked again under them
    work = Path(tempfile.mkdtemp(prefix=f"{_DOWNLOADING}code-{generation_dir.name}-", dir=directory))
    try:
        try:
            cancel.call(lambda: stage_code(uri, work / "code", settings, ENVIRONMENT, cancel),
                        name=f"code-{name}")
        except SourceCodeError as exc:
            raise DeployFailure(f"Variant {name}: {exc}") from exc
        hand_over(work / "code")
        with _model_dirs_locked(directory):
            cancel.raise_if_set()  # under the lock: `remove_model_dirs` cannot have run since
            generation_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(code_dir, ignore_errors=True)  # an earlier attempt's, never marked extracted
            os.rename(work / "code", code_dir)
            marker.write_text(uri)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return code_dir


def _hand_model_to_the_image_user(model_dir: Path, rootfs: Path, image_config: dict) -> None:
    """A non-root `User` must read /opt/ml/model, whatever modes the archive gave its files."""
    try:
        user = resolve_user(rootfs, spec_user(None, image_config))
    except SpecError:
        return  # the instance's start fails with the reason; nothing to hand over to
    hand_over_tree(model_dir, user)


def record_variant_pull(settings: Settings, endpoint: EndpointRow | None, image: str, *, digest: str | None = None,
                        error: BaseException | None = None) -> None:
    if endpoint is not None:
        record_pull(settings, owner=endpoint.created_by, resource=endpoint.arn, image=image, digest=digest,
                    error=error)


def _download_with_limit(settings: Settings, url: str, model_dir: Path, variant: str, limit: float,
                         cancel: Cancel) -> None:
    """ModelDataDownloadTimeoutInSeconds: the variant fails when the download takes longer, and a stop
    gives it up at once. The copy given up stops at its next chunk and publishes nothing: it is told
    so by `abandoned`, as well as by the stop itself, so that neither a later endpoint of the same name
    nor a later attempt at the same generation can be handed its files."""
    abandoned = threading.Event()
    stopped = Cancel(abandoned, check=cancel.is_set, every=0.0)
    try:
        cancel.call(lambda: _download_model(settings, url, model_dir, variant, stopped), timeout=limit,
                    name=f"model-data-{variant}")
    except TimeoutError:
        abandoned.set()
        raise DeployFailure(f"Variant {variant}: downloading the model data {url} took longer than "
                            f"ModelDataDownloadTimeoutInSeconds ({limit:g} s)") from None
    except BaseException:
        abandoned.set()
        raise


def _download_model(settings: Settings, url: str, model_dir: Path, variant: str, stopped: Cancel) -> None:
    """Download and extract into a directory of this attempt's own, renamed into place as the
    generation's directory (model/ and its `extracted` marker) unless the attempt was given up."""
    generation_dir = model_dir.parent
    endpoint = generation_dir.parent
    endpoint.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{_DOWNLOADING}{generation_dir.name}-", dir=endpoint))
    try:
        archive = work / "model.tar.gz"
        try:
            download_stoppable(store_for(url, settings), url, archive, stopped)
            stopped.raise_if_set()
            extract_tar_gz(archive, work / "model")
        except Cancelled:
            raise
        except Exception as exc:
            raise DeployFailure(f"Variant {variant}: the model data {url} could not be downloaded and extracted: "
                                f"{type(exc).__name__}: {exc}") from exc
        archive.unlink()
        (work / "extracted").write_text(url)
        with _model_dirs_locked(endpoint):
            stopped.raise_if_set()  # under the lock: `remove_model_dirs` cannot have run since
            shutil.rmtree(generation_dir, ignore_errors=True)  # an earlier attempt's, never marked extracted
            os.rename(work, generation_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # nothing left once renamed into place


def _model_dirs_locked(endpoint: Path) -> AbstractContextManager[bool]:
    """Held while a generation's model data is put in place or removed."""
    return locked(endpoint / ".model-data.lock")


def instance_name() -> str:
    """A fresh container name for one instance, chosen before it starts so that it can be recorded first."""
    return f"ep-{uuid.uuid4().hex[:12]}"


def start_instance(runtime: Runtime, prepared: PreparedVariant, endpoint: str, directory: Path,
                   name: str, pids_limit: int | None = None) -> ContainerHandle:
    cpus = memory = None
    if prepared.instance_type:
        try:
            resources = resolve_instance_type(prepared.instance_type)
            cpus, memory = resources.cpus, resources.memory_bytes
        except UnknownInstanceType:
            pass
    container = prepared.container
    assert prepared.rootfs is not None, "a variant prepared for a cluster, not for this machine"
    mounts = [Mount(prepared.model_dir, "/opt/ml/model", read_only=True)]
    if prepared.code_dir is not None:
        mounts.append(Mount(prepared.code_dir, "/opt/ml/code", read_only=True))
    spec = ContainerSpec(
        name=name, rootfs=prepared.rootfs, state_dir=directory / "instances" / name,
        image_config=prepared.image_config, args=["serve"], env=dict(container.get("Environment") or {}),
        mounts=mounts, cpus=cpus, memory_bytes=memory,
        pids_limit=pids_limit, network="isolated", hostname=container.get("ContainerHostname"),
        labels={labels.ENDPOINT: endpoint, labels.VARIANT: prepared.name})
    return runtime.start(spec)


def ping(address: str | None) -> bool:
    if not address:
        return False
    try:
        return _pinger.get(f"http://{address}:8080/ping").status_code == 200
    except httpx.HTTPError:
        return False


def last_lines(handle: ContainerHandle, count: int = 10) -> str:
    lines: list[str] = []
    try:
        for line in handle.logs(follow=False):
            lines.append(line)
            del lines[:-count]
    except OSError:
        pass
    return "\n".join(lines)


def exit_description(handle: ContainerHandle) -> str | None:
    """None while the container runs; else how it ended, with its last log lines."""
    status = handle.wait(timeout=0)
    if status is None:
        return None
    how = (f"was killed by signal {status.signal}" if status.signal else
           "ran out of memory" if status.oom_killed else f"exited with code {status.code}")
    tail = last_lines(handle)
    return f"the container {how}" + (f"; last log lines:\n{tail}" if tail else "")


def remove_model_dirs(directory: Path, keep_generation: int | None = None) -> None:
    """Delete extracted model data of generations no longer served (all of them with None, and the
    downloads under way: an abandoned one stops at its next chunk and puts nothing in place)."""
    if not directory.is_dir():
        return
    with _model_dirs_locked(directory):
        for path in directory.glob("*-g*"):
            generation = path.name.rpartition("-g")[2]
            if path.is_dir() and generation.isdigit() and int(generation) != keep_generation:
                shutil.rmtree(path, ignore_errors=True)
        if keep_generation is None:
            for path in directory.glob(f"{_DOWNLOADING}*"):
                shutil.rmtree(path, ignore_errors=True)
