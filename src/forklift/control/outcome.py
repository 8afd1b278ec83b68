"""How a finished job is reported: FailureReason texts, the resolved image, and output upload."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from forklift.cancel import NEVER, Cancel, Cancelled
from forklift.config import Settings
from forklift.control import staging
from forklift.control.instance_types import resolve_instance_type
from forklift.control.models import TrainingJobRow
from forklift.control.status import MAX_FAILURE_REASON
from forklift.credentials.errors import CredentialsError
from forklift.errors import DiskFull, is_disk_full
from forklift.images.limits import ImageLimitExceeded
from forklift.reference import parse
from forklift.registry import AuthenticationFailed, NotFound, RegistryError, TLSError
from forklift.runtime import ExitStatus
from forklift.storage import ObjectStore, pack_tar_gz, store_for

log = logging.getLogger(__name__)

# ExitStatus.reason of a container its backend could not run at all (e.g. a cluster that cannot pull the
# image); the status's message is then the whole FailureReason.
PLATFORM_ERROR = "platform-error"


def resolved_reference(image: str, digest: str) -> str:
    ref = parse(image)
    return f"{ref.registry}/{ref.repository}@{digest}"


def image_error_reason(image: str, exc: BaseException, wording: list[tuple[type | None, str]]) -> str:
    """The first template whose exception class `exc` is (None: any), filled with image, registry and error.

    Training and inference word their reasons differently; which registry failure it was is decided here once.
    """
    registry = parse(image).registry
    for kind, template in wording:
        if kind is None or isinstance(exc, kind):
            return template.format(image=image, registry=registry, exc=exc, error_type=type(exc).__name__)
    raise AssertionError("the wording must end with a catch-all (None) template")


def image_error_kinds() -> tuple[type, type, type, type, type]:
    """CredentialsError, AuthenticationFailed, NotFound, TLSError, RegistryError — most specific first."""
    return CredentialsError, AuthenticationFailed, NotFound, TLSError, RegistryError


def pull_failure(image: str, exc: Exception) -> str:
    """FailureReason for an image that could not be pulled; names the registry and the cause."""
    credentials, authentication, not_found, tls, registry_error = image_error_kinds()
    return image_error_reason(image, exc, [
        (credentials, "ClientError: the credentials provider for {image} failed: {exc}"),
        (authentication, "ClientError: authentication to {registry} failed while pulling {image}: {exc}"),
        (not_found, "ClientError: manifest unknown: {image} was not found in {registry}: {exc}"),
        (tls, "ClientError: TLS to {registry} failed (certificate signed by unknown authority?); add the "
              "registry's CA to $FORKLIFT_HOME/certs.d/{registry}/ca.crt: {exc}"),
        (registry_error, "ClientError: pulling {image} from {registry} failed: {exc}"),
        (ImageLimitExceeded, "ClientError: {exc}"),  # names the image, the limit and the setting
        (None, "ClientError: the training image {image} could not be prepared: {exc}"),
    ])


def instance_note(instance_type: str | None) -> str:
    """What the job's status message says when the instance type is larger than this machine."""
    if not instance_type:
        return ""
    warning = resolve_instance_type(instance_type).warning
    return f" ({warning})" if warning else ""


def volume_note(request: dict) -> str:
    size = (request.get("ResourceConfig") or {}).get("VolumeSizeInGB")
    return f" (VolumeSizeInGB={size} is not enforced by forklift)" if size else ""


def failure_reason(directory: Path, exit_status: ExitStatus, request: dict) -> str | None:
    """None for success; else the container's /opt/ml/output/failure or a platform reason."""
    failure_file = staging.job_paths(directory)["output"] / "failure"
    written = ""
    try:
        written = failure_file.read_text(errors="replace")[:MAX_FAILURE_REASON].strip()
    except OSError:
        pass
    if exit_status.code == 0 and not exit_status.oom_killed:
        return None
    if exit_status.reason == PLATFORM_ERROR:
        return exit_status.message
    if written:
        return written
    if exit_status.oom_killed:
        instance = (request.get("ResourceConfig") or {}).get("InstanceType", "the instance")
        return (f"OutOfMemoryError: the training container ran out of memory (the memory limit of {instance}) "
                "and was killed")
    pids = (f"; it reached its process limit ({exit_status.refused_forks:,} forks or threads refused: "
            "[containers] pids_limit in config.toml)" if exit_status.refused_forks else "")
    if exit_status.signal:
        return f"AlgorithmError: the training container was killed by signal {exit_status.signal}{pids}"
    if exit_status.reason == "lost":
        return f"InternalServerError: the training container's exit status was lost: {exit_status.message}"
    return f"AlgorithmError: the training container exited with code {exit_status.code}{pids}"


def output_prefix(row: TrainingJobRow) -> str:
    return f"{row.request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{row.name}/output"


def upload_outputs(directory: Path, row: TrainingJobRow, settings: Settings, given_up: Cancel = NEVER) -> str:
    """Pack /opt/ml/model and /opt/ml/output/data, upload both; returns the model.tar.gz URI.

    The archives are scratch, removed whatever happens (a half-packed one holds a full disk's last
    bytes); a disk that fills is a `DiskFull` naming the directory: FORKLIFT_HOME, or a file:// destination's.
    `given_up` is set once the caller stopped waiting for the upload (its grace after a stop ran out):
    nothing more is packed or uploaded, what was uploaded is deleted (`remove_outputs`) and `Cancelled`
    raised, so that a job reported without its model leaves none in S3 either. One object's upload is
    not cut part-way: it is looked at between the archives.
    """
    archives = directory / "archives"
    try:
        return _pack_and_upload(directory, row, settings, archives, given_up)
    except Cancelled:
        remove_outputs(row, settings)
        raise
    finally:
        shutil.rmtree(archives, ignore_errors=True)


def remove_outputs(row: TrainingJobRow, settings: Settings) -> None:
    """Delete the job's model.tar.gz and output.tar.gz (either may be missing)."""
    prefix = output_prefix(row)
    store = store_for(prefix, settings)
    for name in ("model.tar.gz", "output.tar.gz"):
        try:
            store.delete(f"{prefix}/{name}")
        except Exception:  # noqa: BLE001 - best effort: the job already reports the upload as unfinished
            log.warning("could not delete %s/%s, uploaded after the job gave up waiting for it", prefix, name,
                        exc_info=True)


def _pack_and_upload(directory: Path, row: TrainingJobRow, settings: Settings, archives: Path,
                     given_up: Cancel) -> str:
    paths = staging.job_paths(directory)
    prefix = output_prefix(row)
    store = store_for(prefix, settings)
    archives.mkdir(exist_ok=True)
    model_uri = f"{prefix}/model.tar.gz"
    paths["model"].mkdir(parents=True, exist_ok=True)
    _upload(store, _pack(paths["model"], archives / "model.tar.gz", settings), model_uri, settings)
    given_up.raise_if_set()
    data = paths["output"] / "data"
    if data.is_dir() and any(data.iterdir()):
        archive = _pack(data, archives / "output.tar.gz", settings)
        given_up.raise_if_set()
        _upload(store, archive, f"{prefix}/output.tar.gz", settings)
        given_up.raise_if_set()
    return model_uri


def _pack(source: Path, archive: Path, settings: Settings) -> Path:
    try:
        return pack_tar_gz(source, archive)
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFull(settings.home, f"packing {archive.name}") from exc
        raise


def _upload(store: ObjectStore, archive: Path, uri: str, settings: Settings) -> None:
    try:
        store.upload(archive, uri)
    except Exception as exc:
        if is_disk_full(exc):
            where = uri.removeprefix("file://").rsplit("/", 1)[0] if uri.startswith("file://") else settings.home
            raise DiskFull(where, f"writing {uri}") from exc
        raise
