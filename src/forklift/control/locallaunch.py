"""Training containers on this machine: the image pulled and unpacked here, run by a local `Runtime`."""

from __future__ import annotations

import asyncio

from forklift.cancel import Cancel, Cancelled
from forklift.config import Settings
from forklift.control import outcome, staging
from forklift.control.instance_types import resolve_instance_type
from forklift.control.launching import ObtainedImage, PlatformFailure, TrainingContainer
from forklift.control.models import TrainingJobRow
from forklift.control.settings import control_settings
from forklift.credentials.chain import default_keychain
from forklift.images.imagestore import ImageStore
from forklift.images.progress import TransferProgress
from forklift.images.rootfs import PreparedImage, pull_and_prepare
from forklift.runtime import (
    ContainerHandle,
    ContainerSpec,
    ContainerStartError,
    Runtime,
    SpecError,
    hand_over,
    hand_over_tree,
    image_user,
)


def training_provider(request: dict) -> str | None:
    config = request["AlgorithmSpecification"].get("TrainingImageConfig") or {}
    return (config.get("TrainingRepositoryAuthConfig") or {}).get("TrainingRepositoryCredentialsProviderArn")


class LocalTrainingLauncher:
    limits_capacity = True

    def __init__(self, settings: Settings, runtime: Runtime):
        self.settings, self.runtime = settings, runtime

    def obtain(self, row: TrainingJobRow, progress: TransferProgress, cancel: Cancel) -> ObtainedImage:
        image = row.request["AlgorithmSpecification"]["TrainingImage"]
        try:
            prepared = cancel.run(self._pull(image, row.request, progress, cancel))
        except Cancelled:
            raise
        except Exception as exc:
            raise PlatformFailure(outcome.pull_failure(image, exc)) from exc
        return ObtainedImage(prepared.image.digest, prepared)

    async def _pull(self, image: str, request: dict, progress: TransferProgress, cancel: Cancel) -> PreparedImage:
        """Pull the image and unpack its rootfs, each layer as soon as it has landed."""
        keychain = await asyncio.to_thread(default_keychain, self.settings, function_arn=training_provider(request),
                                           role_arn=request.get("RoleArn"), image=image, cancel=cancel)
        return await pull_and_prepare(image, ImageStore(self.settings), keychain=keychain, progress=progress)

    def start(self, container: TrainingContainer, obtained: ObtainedImage) -> ContainerHandle:
        prepared: PreparedImage = obtained.prepared
        cpus = memory = None
        if container.instance_type:
            resources = resolve_instance_type(container.instance_type)
            cpus, memory = resources.cpus, resources.memory_bytes
        spec = ContainerSpec(name=container.name, rootfs=prepared.rootfs,
                             state_dir=staging.job_paths(container.directory)["container"],
                             image_config=prepared.config, entrypoint=container.entrypoint, args=container.args,
                             env=container.env, mounts=container.mounts, cpus=cpus, memory_bytes=memory,
                             pids_limit=control_settings(self.settings).pids_limit,
                             network="none" if container.isolated else "isolated", hostname=container.hostname,
                             labels=container.labels)
        self._hand_outputs_to_the_image_user(spec, container)
        try:
            return self.runtime.start(spec)
        except ContainerStartError as exc:
            raise PlatformFailure(f"The training container could not be started: {exc}") from exc

    @staticmethod
    def _hand_outputs_to_the_image_user(spec: ContainerSpec, container: TrainingContainer) -> None:
        """The image's `User` must be able to write /opt/ml/model and /opt/ml/output, as on SageMaker, and
        own the code script mode staged, as the toolkit expects (it may install it in place)."""
        try:
            user = image_user(spec)
        except SpecError as exc:
            raise PlatformFailure(f"ClientError: the training image's User cannot run the job: {exc}") from exc
        paths = staging.job_paths(container.directory)
        hand_over([paths["model"], paths["output"], paths["output"] / "data"], user)
        if any(mount.source == paths["code"] for mount in container.mounts):
            hand_over_tree(paths["code"], user)

    def adopt(self, name: str) -> ContainerHandle | None:
        return self.runtime.adopt(name)
