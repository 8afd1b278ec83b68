"""What a training job's container is, read from its row: the one description the runner starts and
`forklift k8s render` shows, so the two cannot differ.

    container = training_container(settings, row, directory, resolved, staged.mounts)

It stages nothing and asks no registry: the image is the digest already resolved, the extra mounts
are the channels' (`staging.stage_inputs` returns them; `staging.fastfile_mounts` says where they
will be without staging them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

from forklift import labels
from forklift.config import Settings
from forklift.control import scriptmode, staging
from forklift.control.launching import TrainingContainer
from forklift.control.models import TrainingJobRow
from forklift.runtime import Mount


def container_name(job: str) -> str:
    """A fresh name for one attempt of `job`'s container (`tj-<job>-<8 hex>`)."""
    return f"tj-{job}-{uuid.uuid4().hex[:8]}"


def instance_type(request: dict) -> str | None:
    return (request.get("ResourceConfig") or {}).get("InstanceType")


def training_container(settings: Settings, row: TrainingJobRow, directory: Path, resolved: str,
                       extra_mounts: Iterable[Mount] = (), *, name: str | None = None,
                       pipe_channels: tuple[str, ...] = ()) -> TrainingContainer:
    """The container of `row` with its directories under `directory`, running `resolved`
    (registry/repository@sha256:…); `name` defaults to a fresh one."""
    request = row.request
    algorithm = request["AlgorithmSpecification"]
    paths = staging.job_paths(directory)
    entrypoint = algorithm.get("ContainerEntrypoint")
    args = algorithm.get("ContainerArguments")
    if args is None and entrypoint is None:
        args = ["train"]
    env = {**(request.get("Environment") or {}), "TRAINING_JOB_NAME": row.name, "TRAINING_JOB_ARN": row.arn,
           "AWS_REGION": settings.region}
    mounts = [Mount(paths["config"].parent, "/opt/ml/input"),
              Mount(paths["config"], "/opt/ml/input/config", read_only=True),
              Mount(paths["model"], "/opt/ml/model"),
              Mount(paths["output"], "/opt/ml/output"), *extra_mounts]
    if scriptmode.training_code_uri(request) is not None:
        # read-write, as on SageMaker: the toolkit may pip-install the code or chmod its entry point
        mounts.append(Mount(paths["code"], scriptmode.CODE_DIR))
    limit = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    return TrainingContainer(name=name or container_name(row.name), job=row.name, directory=directory,
                             image=algorithm["TrainingImage"], resolved_image=resolved, entrypoint=entrypoint,
                             args=args, env=env, mounts=mounts, instance_type=instance_type(request),
                             isolated=bool(request.get("EnableNetworkIsolation")),
                             vpc=bool(request.get("VpcConfig")), hostname=staging.HOST,
                             labels={labels.TRAINING_JOB: row.name},
                             max_runtime_seconds=int(limit) if limit else None, pipe_channels=pipe_channels)
