"""TrainingService: create, describe, list and stop training jobs.

The request arrives already checked against botocore's model (types, enums, lengths, patterns);
this module adds the rules the model cannot express (SageMaker's Platform/Vpc image rules, what
forklift does not support yet) and hands accepted jobs to the scheduler.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from forklift.config import Settings
from forklift.control import scriptmode, status
from forklift.control.errors import InvalidRequest, JobInUse, JobNotFound
from forklift.control.imageaccess import TRAINING, check_image_access
from forklift.control.instance_types import UnknownInstanceType, resolve_instance_type
from forklift.control.models import TrainingJobRow
from forklift.control.settings import ControlSettings, control_settings
from forklift.control.store import JobExists, JobStore, ListQuery
from forklift.control.tags import check_tags
from forklift.control.trainingmetrics import check_definitions
from forklift.credentials.reserved import RUN_TAG, claim_from_tags
from forklift.storage import StorageError, check_file_uri

SUPPORTED_DATA_TYPES = ("S3Prefix", "ManifestFile")


class Scheduler(Protocol):
    def submit(self, name: str) -> None: ...
    def stop(self, name: str) -> None: ...


class NoScheduler:
    def submit(self, name: str) -> None:
        pass

    def stop(self, name: str) -> None:
        pass


class TrainingService:
    def __init__(self, settings: Settings, store: JobStore, scheduler: Scheduler | None = None,
                 control: ControlSettings | None = None):
        self.settings = settings
        self.store = store
        self.scheduler = scheduler or NoScheduler()
        self.control = control or control_settings(settings)

    # -- create ------------------------------------------------------------------------------
    def create(self, request: dict[str, Any], arn: str, created_by: str) -> TrainingJobRow:
        """Accept the job; `created_by` is the principal that asked (kept as the job's owner)."""
        request = json.loads(json.dumps(request, default=str))  # a plain JSON copy for the row
        self._check(request)
        check_tags(request.get("Tags") or [])
        if request.get("Tags"):  # a run's proof is checked once, here, and kept nowhere
            request["Tags"] = [tag for tag in request["Tags"] if tag.get("Key") != RUN_TAG]
        now = time.time()
        row = TrainingJobRow(name=request["TrainingJobName"], arn=arn, request=request, status="InProgress",
                             secondary_status="Starting", transitions=[], created_at=now, modified_at=now,
                             phase="queued", created_by=created_by)
        status.step(row, "Starting", "Preparing the instances for training", now)
        try:
            self.store.insert(row)
        except JobExists:
            raise JobInUse(f"Training job {request['TrainingJobName']} already exists") from None
        self.scheduler.submit(row.name)
        return row

    def _check(self, request: dict[str, Any]) -> None:
        resources = request.get("ResourceConfig") or {}
        # botocore's model lets InstanceCount be 0 (for InstanceGroups, which forklift refuses below);
        # a job without groups runs on at least one instance, and a job on none must not "complete"
        if int(resources.get("InstanceCount", 1)) < 1 and not resources.get("InstanceGroups"):
            raise InvalidRequest(f"1 validation error detected: Value '{resources['InstanceCount']}' at "
                                 "'resourceConfig.instanceCount' failed to satisfy constraint: Member must have "
                                 "value greater than or equal to 1")
        if int(resources.get("InstanceCount", 1)) > 1:
            raise InvalidRequest("ResourceConfig.InstanceCount > 1 (distributed training) is not yet supported "
                                 "by forklift; use InstanceCount 1")
        if resources.get("InstanceGroups"):
            raise InvalidRequest("ResourceConfig.InstanceGroups (heterogeneous clusters) is not yet supported")
        if "InstanceType" in resources:
            try:
                resolve_instance_type(resources["InstanceType"])
            except UnknownInstanceType as exc:
                raise InvalidRequest(str(exc)) from None
        algorithm = request.get("AlgorithmSpecification") or {}
        image = algorithm.get("TrainingImage")
        if not image:
            raise InvalidRequest("AlgorithmSpecification.TrainingImage is required: forklift does not run "
                                 "marketplace algorithms (AlgorithmName)")
        self._check_image(image, algorithm.get("TrainingImageConfig") or {}, request)
        check_definitions(request)
        self._check_channels(request.get("InputDataConfig") or [])
        self._check_host_paths(request)

    def _check_image(self, image: str, config: dict, request: dict) -> None:
        provider = (config.get("TrainingRepositoryAuthConfig") or {}).get("TrainingRepositoryCredentialsProviderArn")
        check_image_access(self.settings, self.control, TRAINING, image,
                           config.get("TrainingRepositoryAccessMode", "Platform"), provider, request.get("RoleArn"),
                           bool(request.get("VpcConfig")),
                           claim_from_tags(request.get("Tags"), request["TrainingJobName"], image))

    @staticmethod
    def _check_channels(channels: list[dict]) -> None:
        seen = set()
        for channel in channels:
            name = channel["ChannelName"]
            if name in seen:
                raise InvalidRequest(f"Channel name {name} is used more than once in InputDataConfig")
            seen.add(name)
            source = channel.get("DataSource") or {}
            s3 = source.get("S3DataSource")
            if s3 is None:
                kinds = ", ".join(sorted(source)) or "none"
                raise InvalidRequest(f"Channel {name}: only S3DataSource is supported (got {kinds})")
            if s3.get("S3DataType", "S3Prefix") not in SUPPORTED_DATA_TYPES:
                raise InvalidRequest(f"Channel {name}: S3DataType {s3['S3DataType']} is not supported; use "
                                     f"{' or '.join(SUPPORTED_DATA_TYPES)}")

    def _check_host_paths(self, request: dict) -> None:
        """file:// only below the configured file roots; checked again each time the data is used."""
        uris = [(f"InputDataConfig[{i}].DataSource.S3DataSource.S3Uri",
                 ((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri"))
                for i, channel in enumerate(request.get("InputDataConfig") or [])]
        uris.append(("OutputDataConfig.S3OutputPath", (request.get("OutputDataConfig") or {}).get("S3OutputPath")))
        uris.append(("CheckpointConfig.S3Uri", (request.get("CheckpointConfig") or {}).get("S3Uri")))
        uris.append((f"HyperParameters.{scriptmode.HYPERPARAMETER}", scriptmode.training_code_uri(request)))
        for field, uri in uris:
            if uri:
                try:
                    check_file_uri(uri, self.settings, field)
                except StorageError as exc:
                    raise InvalidRequest(str(exc)) from None

    # -- read --------------------------------------------------------------------------------
    def describe(self, name: str) -> TrainingJobRow:
        row = self.store.get(name)
        if row is None:
            raise JobNotFound("Requested resource not found.")
        return row

    def list(self, query: ListQuery) -> tuple[list[TrainingJobRow], bool]:
        return self.store.list(query)

    # -- stop --------------------------------------------------------------------------------
    def stop(self, name: str) -> TrainingJobRow:
        def request_stop(row: TrainingJobRow) -> None:
            if row.status != "InProgress":
                return
            row.stop_reason = "Stopped"
            status.step(row, "Stopping", "Stopping the training job")

        row = self.describe(name)
        if row.status in status.TERMINAL:
            raise InvalidRequest(f"The training job {name} is {row.status}; only an InProgress job can be stopped")
        row = self.store.update(name, request_stop)
        self.scheduler.stop(name)
        return row
