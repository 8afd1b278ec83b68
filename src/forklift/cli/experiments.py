"""`forklift experiments run|create|start|stop|clone|list|show|logs|delete`, as Gradient users know them.

Each run of an experiment is a SageMaker training job on the forklift server (found as every command
finds it, default http://127.0.0.1:9400, started in the background when none answers), visible to
boto3 as well.
"""

from __future__ import annotations

import sys
from datetime import datetime

import click

from forklift.cli.groups import Group
from forklift.cli.output import api_shape, emit_json, output_option, print_fields, print_table

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.

STATUS_STYLE = {"Completed": "green", "Failed": "red", "Stopped": "yellow", "Stopping": "yellow",
                "InProgress": "cyan", "Created": "white"}


def _say(message: str) -> None:
    click.echo(message, err=True)


def _service(*, server: bool = True):
    from forklift.config import load_settings
    from forklift.experiments.server import clients, find_server
    from forklift.experiments.service import Experiments

    settings = load_settings()
    if not server:
        return Experiments(settings, say=_say)
    sagemaker, logs = clients(find_server(settings, _say), settings)
    return Experiments(settings, sagemaker, logs, say=_say)


def experiment_options(func):
    options = [
        click.option("--name", help="Experiment name (default: exp-<random>); its first run is the training "
                                    "job of the same name."),
        click.option("--container", required=True, help="Image, docker syntax: tensorflow/tensorflow:1.5.1-gpu, "
                     "docker.io/org/private_repo:latest, <acct>.dkr.ecr.<region>.amazonaws.com/ns/repo, "
                     "gcr.io/project/repo:tag, host:port/repo@sha256:…"),
        click.option("--command", help='Run with /bin/sh -c (the job\'s ContainerEntrypoint), e.g. '
                     '"python train.py --epochs 3". Without it the image runs with the argument `train`.'),
        click.option("--workspace", type=click.Path(exists=True, file_okay=False),
                     help="Directory uploaded as s3://forklift-workspaces/<name>/code.tar.gz, given to the job as "
                          "input channel `code`; the command first unpacks it into /opt/ml/code and runs there "
                          "(the image needs /bin/sh and tar)."),
        click.option("--machineType", "--machine-type", "machine_type",
                     help="ml.* instance type, or a Gradient name (C4, C5, C7, P4000, P5000, RTX4000, V100, A100, "
                          "…; see forklift.experiments.machines). Default ml.m5.large."),
        click.option("--env", "-e", multiple=True, metavar="K=V", help="Environment variable (repeatable)."),
        click.option("--hyperparameter", "--hp", multiple=True, metavar="K=V", help="Hyperparameter (repeatable)."),
        click.option("--input", "inputs", multiple=True, metavar="NAME=URI",
                     help="Input channel NAME from an s3:// URI, at /opt/ml/input/data/NAME (repeatable)."),
        click.option("--max-runtime", type=click.IntRange(1), default=86400, show_default=True, metavar="SECONDS",
                     help="Stop the run after this long (MaxRuntimeInSeconds)."),
        click.option("--registryUsername", "--registry-username", "registry_username",
                     help="Username for a private registry (Docker ID, AWS, _json_key, …)."),
        click.option("--registryPassword", "--registry-password", "registry_password",
                     help="Password for a private registry (a GCR JSON key as \"$(cat keyfile.json)\", unencoded). "
                          "Kept encrypted for the experiment's lifetime, shared by its clones, never printed."),
        click.option("--registry-password-stdin", is_flag=True,
                     help="Read the registry password from stdin (keeps it out of shell history)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _new_experiment(kwargs: dict):
    from forklift.credentials import Credentials
    from forklift.experiments.request import parse_pairs
    from forklift.experiments.service import NewExperiment

    password = kwargs["registry_password"]
    if kwargs["registry_password_stdin"]:
        if password is not None:
            raise click.UsageError("give --registryPassword or --registry-password-stdin, not both")
        password = sys.stdin.read().rstrip("\r\n")
    username = kwargs["registry_username"]
    credentials = None
    if username or password:
        if not (username and password):
            raise click.UsageError("a private registry needs both --registryUsername and --registryPassword")
        credentials = Credentials(username=username, password=password)
    return NewExperiment(container=kwargs["container"], name=kwargs["name"], command=kwargs["command"],
                         workspace=kwargs["workspace"], machine_type=kwargs["machine_type"],
                         env=parse_pairs(kwargs["env"], "--env"),
                         hyperparameters=parse_pairs(kwargs["hyperparameter"], "--hyperparameter"),
                         inputs=parse_pairs(kwargs["inputs"], "--input"), max_runtime=kwargs["max_runtime"],
                         credentials=credentials)


@click.group(cls=Group)
def experiments() -> None:
    """Gradient-style experiments: each run is a SageMaker training job on the forklift server.

    The server is FORKLIFT_URL, AWS_ENDPOINT_URL_SAGEMAKER or this FORKLIFT_HOME's (default
    http://127.0.0.1:9400); when none answers, one is started in the background for this FORKLIFT_HOME
    (`forklift server stop` stops it). `run` exits 0 when the run Completed, 1 when it Failed (the
    FailureReason is printed on stderr) and 2 when it was Stopped.
    """


@experiments.command("create")
@experiment_options
def create(**kwargs) -> None:
    """Create an experiment without starting it; prints its name."""
    row = _service(server=False).create(_new_experiment(kwargs))
    _say(f"created experiment {row.name} ({row.image} on {row.instance_type})")
    click.echo(row.name)


@experiments.command("run")
@experiment_options
def run(**kwargs) -> None:
    """Create and start an experiment, follow its logs, and exit with its outcome (0/1/2)."""
    new = _new_experiment(kwargs)
    service = _service()
    row = service.create(new)
    _say(f"created experiment {row.name} ({row.image} on {row.instance_type})")
    job = service.start(row.name)
    _say(f"started experiment {row.name} (training job {job})")
    _finish(service, row.name)


def _finish(service, name: str) -> None:
    try:
        job = service.follow(name, follow=True, echo=click.echo, progress=lambda m: _say(f"[{name}] {m}"))
    except KeyboardInterrupt:
        _say(f"\nexperiment {name} keeps running: `forklift experiments logs --follow {name}`")
        raise SystemExit(130) from None
    _exit_with(name, job)


def _exit_with(name: str, job: dict) -> None:
    from forklift.logsclient import EXIT_CODES, outcome_line

    _say(outcome_line(f"experiment {name}", job))
    raise SystemExit(EXIT_CODES.get(job["TrainingJobStatus"], 1))


@experiments.command("start")
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Follow the logs and exit with the outcome, like `run`.")
def start(name: str, follow: bool) -> None:
    """Start a new run of an experiment (a new training job)."""
    service = _service()
    job = service.start(name)
    _say(f"started experiment {name} (training job {job})")
    if follow:
        _finish(service, name)


@experiments.command("stop")
@click.argument("name")
def stop(name: str) -> None:
    """Stop a running experiment."""
    job = _service().stop(name)
    _say(f"stopping experiment {name} (training job {job})")


@experiments.command("clone")
@click.argument("source")
@click.option("--name", help="Name of the clone (default: <source>-clone-<random>).")
@click.option("--start", "start_now", is_flag=True, help="Start the clone right away.")
@click.option("--follow", "-f", is_flag=True, help="With --start: follow the logs and exit with the outcome.")
@click.option("--hyperparameter", "--hp", multiple=True, metavar="K=V",
              help="Override one of the source's hyperparameters, or add one (repeatable).")
def clone(source: str, name: str | None, start_now: bool, follow: bool, hyperparameter: tuple[str, ...]) -> None:
    """Copy an experiment: same image, command, workspace and (reused) registry credentials."""
    from forklift.experiments.request import parse_pairs

    service = _service(server=start_now)
    row = service.clone(source, name, hyperparameters=parse_pairs(hyperparameter, "--hyperparameter"))
    _say(f"cloned experiment {source} as {row.name}")
    click.echo(row.name)
    if start_now:
        job = service.start(row.name)
        _say(f"started experiment {row.name} (training job {job})")
        if follow:
            _finish(service, row.name)


def _when(value) -> str:
    if value is None:
        return "-"
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value))
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _status(job: dict | None) -> tuple[str, str]:
    status = job["TrainingJobStatus"] if job else "Created"
    return status, STATUS_STYLE.get(status, "white")


def _summary(row, job: dict | None) -> dict:
    """An experiment as `-o json` shows it (its current run's DescribeTrainingJob under TrainingJob)."""
    return {"Name": row.name, "Status": _status(job)[0], "MachineType": row.machine_type,
            "InstanceType": row.instance_type, "Container": row.container, "Image": row.image,
            "Command": row.command, "Workspace": row.workspace, "Environment": dict(row.env),
            "HyperParameters": dict(row.hyperparameters), "Inputs": dict(row.inputs),
            "MaxRuntimeInSeconds": row.max_runtime, "RegistryCredentials": bool(row.secret_id),
            "ClonedFrom": row.cloned_from, "CreationTime": datetime.fromtimestamp(row.created_at).astimezone(),
            "CreatedBy": row.created_by, "Runs": row.runs, "TrainingJobName": row.job_name}


EXPERIMENT_COLUMNS = ("name", "container", "image", "command", "workspace", "workspace_uri", "machine_type",
                      "instance_type", "env", "hyperparameters", "inputs", "max_runtime", "secret_id", "cloned_from",
                      "job_name", "runs", "created_at", "created_by")


def _quick_list():
    """(row, current job) pairs read without the ORM (`forklift.quickread`); None when only it can."""
    from types import SimpleNamespace

    from forklift import quickread
    from forklift.config import load_settings
    from forklift.experiments.server import clients, find_server

    settings = load_settings()
    rows = quickread.select(settings, "experiments", EXPERIMENT_COLUMNS, order_by="created_at DESC",
                            json_columns=("env", "hyperparameters", "inputs"))
    if rows is None:
        return None
    sagemaker, _ = clients(find_server(settings, _say), settings)
    return [(SimpleNamespace(**row), sagemaker.describe_training_job(TrainingJobName=row["job_name"])
             if row["job_name"] else None) for row in rows]


@experiments.command("list")
@output_option
def list_experiments(output: str) -> None:
    """Experiments, newest first."""
    found = _quick_list()
    if found is None:
        found = _service().list()
    if output == "json":
        emit_json({"Experiments": [_summary(row, job) for row, job in found]})
        return
    print_table(("NAME", "STATUS", "MACHINE", "CONTAINER", "CREATED", "CLONED FROM"),
                [(row.name, _status(job), row.machine_type, row.container, _when(row.created_at),
                  row.cloned_from or "-") for row, job in found])


@experiments.command("show")
@click.argument("name")
@output_option
def show(name: str, output: str) -> None:
    """An experiment's settings and the status of its current run."""
    service = _service()
    row = service.store.get(name)
    job = service.job(row)
    if output == "json":
        emit_json({**_summary(row, job), "TrainingJob": api_shape(job) if job else None})
        return
    status, style = _status(job)
    fields = [("Name", row.name), ("Status", (status + (f" / {job['SecondaryStatus']}" if job else ""), style)),
              ("Container", row.container), ("Image", row.image),
              ("Machine", f"{row.machine_type} ({row.instance_type})" if row.machine_type != row.instance_type
               else row.instance_type),
              ("Command", row.command or "- (the image's entrypoint with `train`)"),
              ("Workspace", f"{row.workspace} -> /opt/ml/code" if row.workspace else "-"),
              ("Registry credentials", "stored, encrypted" if row.secret_id else "none"),
              ("Environment", ", ".join(row.env) or "-"),
              ("Hyperparameters", ", ".join(f"{k}={v}" for k, v in row.hyperparameters.items()) or "-"),
              ("Inputs", ", ".join(f"{k}={v}" for k, v in row.inputs.items()) or "-"),
              ("Max runtime", f"{row.max_runtime} s"), ("Cloned from", row.cloned_from or "-"),
              ("Created", _when(row.created_at)), ("Created by", row.created_by or "-"), ("Runs", str(row.runs)),
              ("Training job", row.job_name or "-")]
    if job:
        fields += [("Started", _when(job.get("TrainingStartTime"))), ("Ended", _when(job.get("TrainingEndTime"))),
                   ("Model", job.get("ModelArtifacts", {}).get("S3ModelArtifacts", "-"))]
        if job.get("FailureReason"):
            fields.append(("Failure", (job["FailureReason"], "red")))
    print_fields(fields)


@experiments.command("logs")
@click.argument("name")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new lines until the run ends, then exit 0 (Completed), 1 (Failed) or 2 (Stopped).")
def logs(name: str, follow: bool) -> None:
    """The current run's container output (stdout and stderr)."""
    job = _service().follow(name, follow=follow, echo=click.echo)
    if follow:
        _exit_with(name, job)


@experiments.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Stop a running experiment first.")
def delete(name: str, force: bool) -> None:
    """Delete an experiment; its registry credentials are purged with the last experiment sharing them."""
    purged = _service().delete(name, force=force)
    _say(f"deleted experiment {name}" + ("; its registry credentials were purged" if purged else ""))
