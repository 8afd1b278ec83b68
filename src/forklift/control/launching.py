"""The seam between a training job's runner and the machinery that runs its container.

The runner (`control.runner.JobRunner`) owns a job's life: its phases in the database, staging its
config and channels into the job's directory, waiting, the outcome and the upload. What differs by
backend sits behind `TrainingLauncher`:

    obtain(row, progress, cancel)
                                 the image: pulled and unpacked here (runc), or only resolved to
                                 the digest the cluster will pull (Kubernetes); a stop (`cancel`)
                                 gives it up, provider function and stalled registry included
    start(container, obtained)   the container, from the backend-neutral `TrainingContainer`
    adopt(name)                  a container an earlier server started

`control.locallaunch.LocalTrainingLauncher` is the runc one; `control.kubernetes` has the other.
The composition root picks one; nothing in the control plane asks which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from forklift.cancel import Cancel
from forklift.control.models import TrainingJobRow
from forklift.images.progress import TransferProgress
from forklift.runtime import ContainerHandle, Mount


class PlatformFailure(Exception):
    """The platform could not run the job; the message is the FailureReason."""


@dataclass(frozen=True)
class ObtainedImage:
    """The job's image as the launcher obtained it: its digest, and what the launcher keeps to start it."""

    digest: str
    prepared: Any = field(default=None, repr=False)  # the launcher's own (a rootfs, credentials)


@dataclass(frozen=True)
class TrainingContainer:
    """What a training job's container is, whatever runs it; mount sources lie in the job's directory."""

    name: str
    job: str
    directory: Path  # the job's own directory (control.logs.job_dir): config, channels, model, output
    image: str  # as the request names it
    resolved_image: str  # registry/repository@sha256:…
    entrypoint: list[str] | None
    args: list[str] | None
    env: dict[str, str]
    mounts: list[Mount]
    instance_type: str | None  # each backend sizes the container from it (runc clamps to the machine)
    isolated: bool  # EnableNetworkIsolation: no network at all
    vpc: bool  # VpcConfig given: no traffic in but from the job's own containers
    hostname: str
    labels: dict[str, str]
    max_runtime_seconds: int | None
    pipe_channels: tuple[str, ...] = ()


class TrainingLauncher(Protocol):
    # False when the backend schedules by itself (a cluster): the scheduler then admits every job.
    limits_capacity: bool

    def obtain(self, row: TrainingJobRow, progress: TransferProgress, cancel: Cancel) -> ObtainedImage:
        """The job's image; `PlatformFailure` with the FailureReason when it cannot be had, `Cancelled`
        as soon as `cancel` is set (whatever the pull or the provider function is waiting for)."""
        ...

    def start(self, container: TrainingContainer, obtained: ObtainedImage) -> ContainerHandle:
        """The running container; `PlatformFailure` when it cannot be started."""
        ...

    def adopt(self, name: str) -> ContainerHandle | None:
        """A container started by an earlier server (running, or ended but not released)."""
        ...
