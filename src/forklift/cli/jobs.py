"""`forklift jobs list|show|logs|stop`: training jobs, through the running server's API.

The commands talk to `forklift serve` with boto3 (the server found in `$FORKLIFT_HOME/server.json`,
or `--endpoint-url`), exactly as user code does, so they show what the API shows.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import click

from forklift.cli.errors import handle_errors
from forklift.logsclient import read_forward

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ACTIVE = ("InProgress", "Stopping")
STATUS_STYLE = {"Completed": "green", "Failed": "red", "Stopped": "yellow", "Stopping": "yellow",
                "InProgress": "cyan"}


def _endpoint(url: str | None) -> str:
    if url:
        return url
    from forklift.config import load_settings

    path = load_settings().home / "server.json"
    try:
        return json.loads(path.read_text())["url"]
    except (OSError, ValueError, KeyError):
        raise click.ClickException("no forklift server is running for this FORKLIFT_HOME: start `forklift serve` "
                                   "or pass --endpoint-url") from None


def _client(service: str, url: str | None):
    import boto3
    from botocore.config import Config

    from forklift.config import load_settings

    return boto3.client(service, endpoint_url=_endpoint(url), region_name=load_settings().region,
                        aws_access_key_id="forklift", aws_secret_access_key="forklift",
                        config=Config(retries={"max_attempts": 2}))


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


endpoint_option = click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL_SAGEMAKER",
                               help="The server's URL (default: the running `forklift serve`).")


@click.group()
def jobs() -> None:
    """Training jobs: list, show, logs, stop."""


@jobs.command("list")
@click.option("--status", "status_equals", type=click.Choice(["InProgress", "Completed", "Failed", "Stopping",
                                                               "Stopped"]))
@click.option("--name-contains")
@click.option("--limit", default=50, show_default=True)
@endpoint_option
@handle_errors
def list_jobs(status_equals: str | None, name_contains: str | None, limit: int, endpoint_url: str | None) -> None:
    """Training jobs, newest first."""
    from rich.console import Console
    from rich.table import Table

    sm = _client("sagemaker", endpoint_url)
    kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status_equals:
        kwargs["StatusEquals"] = status_equals
    if name_contains:
        kwargs["NameContains"] = name_contains
    table = Table("NAME", "STATUS", "SECONDARY", "CREATED", "ENDED", box=None)
    shown = 0
    for page in sm.get_paginator("list_training_jobs").paginate(**kwargs):
        for job in page["TrainingJobSummaries"]:
            if shown >= limit:
                break
            shown += 1
            table.add_row(job["TrainingJobName"], _status(job["TrainingJobStatus"]), job.get("SecondaryStatus", ""),
                          _when(job["CreationTime"]), _when(job.get("TrainingEndTime")))
    Console().print(table)


def _render(job: dict):
    from rich.table import Table

    table = Table(box=None, show_header=False)
    rows = [("Name", job["TrainingJobName"]), ("ARN", job["TrainingJobArn"]),
            ("Status", f"{_status(job['TrainingJobStatus'])} / {job['SecondaryStatus']}"),
            ("Image", job.get("AlgorithmSpecification", {}).get("TrainingImage", "-")),
            ("Instance", job.get("ResourceConfig", {}).get("InstanceType", "-")),
            ("Created", _when(job["CreationTime"])), ("Started", _when(job.get("TrainingStartTime"))),
            ("Ended", _when(job.get("TrainingEndTime"))),
            ("Model", job.get("ModelArtifacts", {}).get("S3ModelArtifacts", "-"))]
    if job.get("FailureReason"):
        rows.append(("Failure", f"[red]{job['FailureReason']}[/]"))
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", str(value))
    steps = Table("STEP", "STARTED", "MESSAGE", box=None)
    for t in job.get("SecondaryStatusTransitions", []):
        steps.add_row(t["Status"], _when(t["StartTime"]), t.get("StatusMessage", ""))
    from rich.console import Group

    return Group(table, "", steps)


@jobs.command("show")
@click.argument("name")
@click.option("--watch", "-w", is_flag=True, help="Refresh until the job ends.")
@endpoint_option
@handle_errors
def show(name: str, watch: bool, endpoint_url: str | None) -> None:
    """A job's status, steps and failure reason."""
    from rich.console import Console
    from rich.live import Live

    sm = _client("sagemaker", endpoint_url)
    job = sm.describe_training_job(TrainingJobName=name)
    if not watch:
        Console().print(_render(job))
        return
    with Live(_render(job), refresh_per_second=4) as live:
        while job["TrainingJobStatus"] in ACTIVE:
            time.sleep(1)
            job = sm.describe_training_job(TrainingJobName=name)
            live.update(_render(job))


@jobs.command("logs")
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@endpoint_option
@handle_errors
def logs(name: str, follow: bool, endpoint_url: str | None) -> None:
    """A job's container output (stdout and stderr)."""
    sm = _client("sagemaker", endpoint_url)
    cw = _client("logs", endpoint_url)
    token = None
    stream = None
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if stream is None:
            streams = cw.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
            stream = streams[0]["logStreamName"] if streams else None
        if stream is not None:
            events, token = read_forward(cw, LOG_GROUP, stream, token)
            for event in events:
                click.echo(event["message"])
        if not follow or job["TrainingJobStatus"] not in ACTIVE:
            return
        time.sleep(1)


@jobs.command("stop")
@click.argument("name")
@endpoint_option
@handle_errors
def stop(name: str, endpoint_url: str | None) -> None:
    """Stop a running job (SIGTERM, then SIGKILL after the grace period)."""
    _client("sagemaker", endpoint_url).stop_training_job(TrainingJobName=name)
    click.echo(f"stopping {name}", err=True)
