"""Experiments: create, start, stop, clone, delete, and read their training jobs back.

An experiment is a row of its own (`records`) plus, once started, a SageMaker training job created through
the server's API like any user's job, tagged `forklift:experiment=<name>`. The row is written by the CLI
itself, so its owner (`created_by`) is the local user, `local:<unix user>`; its training jobs are owned
by the principal the CLI signs with. Registry credentials are put in
the SecretStore with the experiment as owner; a clone adds itself as an owner of the same secret and each
delete releases its ownership, so the secret is purged with the last experiment that uses it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from forklift.audit import local_principal
from forklift.config import Settings
from forklift.control.instance_types import resolve_instance_type
from forklift.credentials import Credentials
from forklift.experiments import request as rq
from forklift.experiments.errors import ExperimentError
from forklift.experiments.machines import resolve_machine
from forklift.experiments.records import ExperimentRow, ExperimentStore
from forklift.experiments.workspace import (
    delete_workspace,
    ensure_buckets,
    upload_workspace,
)
from forklift.logsclient import ACTIVE, follow_training_job
from forklift.reference import parse


@dataclass
class NewExperiment:
    container: str
    name: str | None = None
    command: str | None = None
    workspace: str | None = None
    machine_type: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    max_runtime: int = rq.DEFAULT_MAX_RUNTIME
    credentials: Credentials | None = None


class Experiments:
    def __init__(self, settings: Settings, sagemaker=None, logs=None, *, say: Callable[[str], None] = print):
        from forklift.credentials.secrets import SecretStore  # here: cryptography costs start-up time

        self.settings = settings
        self.sagemaker, self.logs = sagemaker, logs
        self.store = ExperimentStore(settings)
        self.secrets = SecretStore(settings)
        self.say = say

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.settings.account}:role/forklift-experiments"

    # -- create --------------------------------------------------------------------------------
    def create(self, new: NewExperiment) -> ExperimentRow:
        name = rq.check_name(new.name or f"exp-{uuid.uuid4().hex[:8]}")
        if self.store.exists(name):
            raise ExperimentError(f"an experiment named {name!r} already exists; choose another --name")
        image = rq.normalize_container(new.container)
        machine = resolve_machine(new.machine_type)
        # Checked now, not when the job starts: a bad request fails before anything is stored.
        rq.check_request(rq.training_request(
            experiment=name, job=rq.job_name(name, 2), image=image, instance_type=machine.instance_type,
            role_arn=self.role_arn, command=new.command, env=new.env, hyperparameters=new.hyperparameters,
            workspace_uri=f"s3://{rq.WORKSPACE_BUCKET}/{name}/{rq.CODE_ARCHIVE}" if new.workspace else None,
            inputs=new.inputs, max_runtime=new.max_runtime))
        credentials = new.credentials if new.credentials and not new.credentials.is_anonymous else None
        clamped = resolve_instance_type(machine.instance_type).warning
        if clamped:
            self.say(f"note: {clamped}")
        if machine.is_gpu:
            self._check_cuda(image, credentials)
        row = ExperimentRow(name=name, container=new.container, image=image, command=new.command,
                            workspace=new.workspace, machine_type=machine.given, instance_type=machine.instance_type,
                            env=dict(new.env), hyperparameters=dict(new.hyperparameters), inputs=dict(new.inputs),
                            max_runtime=int(new.max_runtime), runs=0, created_at=time.time(),
                            created_by=local_principal())
        if credentials is not None:
            row.secret_id = self.secrets.put(credentials, row.owner, registry=parse(image).registry)
        try:
            if new.workspace:
                row.workspace_uri = upload_workspace(self.settings, name, new.workspace)
            self.store.insert(row)
        except BaseException:
            if row.secret_id:
                self.secrets.release(row.secret_id, row.owner)
            raise
        return row

    def _check_cuda(self, image: str, credentials: Credentials | None) -> None:
        # here, not at the top: the credential sources and the registry client load only for a new image
        from forklift.credentials.chain import default_keychain
        from forklift.experiments.cuda import cuda_warning

        keychain = default_keychain(self.settings, explicit=credentials, explicit_registry=parse(image).registry)
        warning = cuda_warning(image, self.settings, keychain)
        if warning:
            self.say(warning)

    # -- run -----------------------------------------------------------------------------------
    def start(self, name: str) -> str:
        """Start a new run (training job) of the experiment; returns the job name."""
        row = self.store.get(name)
        if row.job_name:
            job = self.job(row)
            if job and job["TrainingJobStatus"] in ACTIVE:
                raise ExperimentError(f"experiment {name} is already running (training job {row.job_name})")
        run = row.runs + 1
        job_name = rq.job_name(name, run)
        provider = token = None
        if row.secret_id:
            # only runs that need them pay for these imports
            from forklift.credentials.functions import FunctionRegistry
            from forklift.credentials.reserved import run_token

            provider = FunctionRegistry(self.settings, secrets=self.secrets).secret_arn(row.secret_id)
            token = run_token(self.settings, row.secret_id, name, job_name, row.image)
        request = rq.training_request(
            experiment=name, job=job_name, image=row.image, instance_type=row.instance_type, role_arn=self.role_arn,
            command=row.command, workspace_uri=row.workspace_uri, provider_arn=provider, env=row.env,
            hyperparameters=row.hyperparameters, inputs=row.inputs, max_runtime=row.max_runtime,
            cloned_from=row.cloned_from, run_token=token)
        ensure_buckets(self.settings)
        self.sagemaker.create_training_job(**request)
        self.store.update(name, job_name=job_name, runs=run)
        return job_name

    def stop(self, name: str) -> str:
        row = self.store.get(name)
        job = self.job(row)
        if job is None or job["TrainingJobStatus"] not in ACTIVE:
            state = job["TrainingJobStatus"] if job else "not started"
            raise ExperimentError(f"experiment {name} is {state}; only a running experiment can be stopped")
        self.sagemaker.stop_training_job(TrainingJobName=row.job_name)
        return row.job_name

    # -- clone and delete ----------------------------------------------------------------------
    def clone(self, source: str, name: str | None = None,
              hyperparameters: dict[str, str] | None = None) -> ExperimentRow:
        """A new experiment with the source's settings, workspace archive and (shared) credentials;
        `hyperparameters` override the source's, key by key."""
        original = self.store.get(source)
        name = rq.check_name(name or f"{source[:40]}-clone-{uuid.uuid4().hex[:4]}")
        if self.store.exists(name):
            raise ExperimentError(f"an experiment named {name!r} already exists; choose another --name")
        merged = {**original.hyperparameters, **(hyperparameters or {})}
        if hyperparameters:
            rq.check_request(rq.training_request(
                experiment=name, job=rq.job_name(name, 2), image=original.image,
                instance_type=original.instance_type, role_arn=self.role_arn, command=original.command,
                env=original.env, hyperparameters=merged, workspace_uri=original.workspace_uri,
                inputs=original.inputs, max_runtime=original.max_runtime))
        row = ExperimentRow(name=name, container=original.container, image=original.image, command=original.command,
                            workspace=original.workspace, workspace_uri=original.workspace_uri,
                            machine_type=original.machine_type, instance_type=original.instance_type,
                            env=dict(original.env), hyperparameters=merged,
                            inputs=dict(original.inputs), max_runtime=original.max_runtime,
                            secret_id=original.secret_id, cloned_from=source, runs=0, created_at=time.time(),
                            created_by=local_principal())
        if row.secret_id:
            self.secrets.add_owner(row.secret_id, row.owner)
        try:
            self.store.insert(row)
        except BaseException:
            if row.secret_id:
                self.secrets.release(row.secret_id, row.owner)
            raise
        return row

    def delete(self, name: str, *, force: bool = False) -> bool:
        """Forget the experiment; True when its credentials were purged (no clone still holds them)."""
        row = self.store.get(name)
        job = self.job(row) if self.sagemaker is not None else None
        if job and job["TrainingJobStatus"] in ACTIVE:
            if not force:
                raise ExperimentError(f"experiment {name} is running (training job {row.job_name}); stop it first "
                                      "or delete with --force")
            self.sagemaker.stop_training_job(TrainingJobName=row.job_name)
        self.store.delete(name)
        purged = self.secrets.release(row.secret_id, row.owner) if row.secret_id else False
        if row.workspace_uri and not self.store.sharing_workspace(row.workspace_uri):
            delete_workspace(self.settings, row.workspace_uri)
        return purged

    # -- read ----------------------------------------------------------------------------------
    def job(self, row: ExperimentRow) -> dict | None:
        """The experiment's current training job as DescribeTrainingJob answers it (None before a start)."""
        if not row.job_name:
            return None
        return self.sagemaker.describe_training_job(TrainingJobName=row.job_name)

    def list(self) -> list[tuple[ExperimentRow, dict | None]]:
        return [(row, self.job(row)) for row in self.store.list()]

    def follow(self, name: str, *, follow: bool, echo: Callable[[str], None],
               progress: Callable[[str], None] | None = None, poll: float = 1.0) -> dict:
        """Print the current run's log lines (all of them, then new ones while it runs with `follow`)."""
        row = self.store.get(name)
        if not row.job_name:
            raise ExperimentError(f"experiment {name} has not been started (`forklift experiments start {name}`)")
        return follow_training_job(self.sagemaker, self.logs, row.job_name, follow=follow, echo=echo,
                                   progress=progress, poll=poll)
