"""`forklift jobs list|show|logs|stop`: training jobs, through the running server's API.

The commands call `forklift serve`'s SageMaker API as user code does (over `forklift.jsonclient`, the
server found as `forklift.serverfile` says), so they show what the API shows; `-o json` prints the
API's shapes.
"""

from __future__ import annotations

import time
from datetime import datetime

import click

from forklift.cli.apiclient import client, endpoint_option
from forklift.cli.groups import Group
from forklift.cli.output import api_shape, emit_json, output_option, print_fields, print_table
from forklift.cli.owners import created_by
from forklift.logsclient import ACTIVE, EXIT_CODES, follow_training_job, outcome_line

STATUS_STYLE = {"Completed": "green", "Failed": "red", "Stopped": "yellow", "Stopping": "yellow",
                "InProgress": "cyan"}


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _status(status: str) -> tuple[str, str]:
    return status, STATUS_STYLE.get(status, "white")


@click.group(cls=Group)
def jobs() -> None:
    """Training jobs: list, show, logs, stop."""


@jobs.command("list")
@click.option("--status", "status_equals", type=click.Choice(["InProgress", "Completed", "Failed", "Stopping",
                                                               "Stopped"]))
@click.option("--name-contains")
@click.option("--limit", default=50, show_default=True)
@output_option
@endpoint_option
def list_jobs(status_equals: str | None, name_contains: str | None, limit: int, output: str,
              endpoint_url: str | None) -> None:
    """Training jobs, newest first."""
    kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status_equals:
        kwargs["StatusEquals"] = status_equals
    if name_contains:
        kwargs["NameContains"] = name_contains
    summaries = []
    for page in client("sagemaker", endpoint_url).pages("ListTrainingJobs", **kwargs):
        summaries += page["TrainingJobSummaries"]
        if len(summaries) >= limit:
            break
    summaries = summaries[:limit]
    if output == "json":
        emit_json({"TrainingJobSummaries": summaries})
        return
    print_table(("NAME", "STATUS", "SECONDARY", "CREATED", "ENDED"),
                [(job["TrainingJobName"], _status(job["TrainingJobStatus"]), job.get("SecondaryStatus", ""),
                  when(job["CreationTime"]), when(job.get("TrainingEndTime"))) for job in summaries])


def _print_job(job: dict) -> None:
    fields = [("Name", job["TrainingJobName"]), ("ARN", job["TrainingJobArn"]),
              ("Status", (f"{job['TrainingJobStatus']} / {job['SecondaryStatus']}",
                          STATUS_STYLE.get(job["TrainingJobStatus"], "white"))),
              ("Image", job.get("AlgorithmSpecification", {}).get("TrainingImage", "-")),
              ("Resolved image", job.get("ResolvedTrainingImage", "-")),
              ("Instance", job.get("ResourceConfig", {}).get("InstanceType", "-")),
              ("Created", when(job["CreationTime"])), ("Created by", created_by("training-job", job["TrainingJobArn"])),
              ("Started", when(job.get("TrainingStartTime"))),
              ("Ended", when(job.get("TrainingEndTime"))),
              ("Model", job.get("ModelArtifacts", {}).get("S3ModelArtifacts", "-"))]
    if job.get("FailureReason"):
        fields.append(("Failure", (job["FailureReason"], "red")))
    print_fields(fields)
    click.echo()
    print_table(("STEP", "STARTED", "MESSAGE"),
                [(t["Status"], when(t["StartTime"]), t.get("StatusMessage", ""))
                 for t in job.get("SecondaryStatusTransitions", [])])


@jobs.command("show")
@click.argument("name")
@click.option("--watch", "-w", is_flag=True, help="Print the job again at each step until it ends.")
@output_option
@endpoint_option
def show(name: str, watch: bool, output: str, endpoint_url: str | None) -> None:
    """A job's status, steps and failure reason (`-o json`: the DescribeTrainingJob response)."""
    sm = client("sagemaker", endpoint_url)
    job = sm.describe_training_job(TrainingJobName=name)
    if output == "json":
        emit_json(api_shape(job))
        return
    _print_job(job)
    shown = (job["TrainingJobStatus"], job["SecondaryStatus"])
    while watch and job["TrainingJobStatus"] in ACTIVE:
        time.sleep(1)
        job = sm.describe_training_job(TrainingJobName=name)
        if (job["TrainingJobStatus"], job["SecondaryStatus"]) != shown:
            shown = (job["TrainingJobStatus"], job["SecondaryStatus"])
            click.echo()
            _print_job(job)


@jobs.command("logs")
@click.argument("name")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new lines until the job ends, then exit 0 (Completed), 1 (Failed) or 2 (Stopped).")
@endpoint_option
def logs(name: str, follow: bool, endpoint_url: str | None) -> None:
    """A job's container output (stdout and stderr)."""
    job = follow_training_job(client("sagemaker", endpoint_url), client("logs", endpoint_url), name,
                              follow=follow, echo=click.echo)
    if follow:
        click.echo(outcome_line(f"training job {name}", job), err=True)
        raise SystemExit(EXIT_CODES.get(job["TrainingJobStatus"], 1))


@jobs.command("stop")
@click.argument("name")
@endpoint_option
def stop(name: str, endpoint_url: str | None) -> None:
    """Stop a running job (SIGTERM, then SIGKILL after the grace period)."""
    client("sagemaker", endpoint_url).stop_training_job(TrainingJobName=name)
    click.echo(f"stopping {name}", err=True)
