"""Reading a CloudWatch Logs stream forward with boto3's `logs` client (forklift serve's or AWS's).

    events, token = read_forward(logs, "/aws/sagemaker/TrainingJobs", stream)          # all so far
    events, token = read_forward(logs, "/aws/sagemaker/TrainingJobs", stream, token)   # what is new

and following a training job's output to its end (`forklift jobs logs -f`, `forklift experiments
run`), which then exits as `EXIT_CODES` says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ACTIVE = ("InProgress", "Stopping")
# How a command that followed a training job to its end exits.
EXIT_CODES = {"Completed": 0, "Failed": 1, "Stopped": 2}


def read_forward(logs: Any, group: str, stream: str, token: str | None = None) -> tuple[list[dict], str | None]:
    """The stream's events after `token` (from its start when None), and the token to go on from.

    CloudWatch may return empty pages before the end; the end is where it hands back the token it
    was given."""
    events: list[dict] = []
    while True:
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, **kwargs)
        events += page["events"]
        if page["nextForwardToken"] == token:
            return events, token
        token = page["nextForwardToken"]


def follow_training_job(sagemaker: Any, logs: Any, job_name: str, *, follow: bool, echo: Callable[[str], None],
                        progress: Callable[[str], None] | None = None, poll: float = 1.0) -> dict:
    """Print the job's log lines (all so far, then new ones while it runs when `follow`); `progress`
    gets each new status step. Returns the last DescribeTrainingJob response."""
    stream, token, seen = None, None, 0
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=job_name)
        if progress:
            transitions = job.get("SecondaryStatusTransitions") or []
            for step in transitions[seen:]:
                progress(f"{step['Status']}: {step.get('StatusMessage', '')}")
            seen = len(transitions)
        if stream is None:
            streams = logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP,
                                                logStreamNamePrefix=f"{job_name}/")["logStreams"]
            stream = streams[0]["logStreamName"] if streams else None
        if stream is not None:
            events, token = read_forward(logs, TRAINING_LOG_GROUP, stream, token)
            for event in events:
                echo(event["message"])
        if not follow or job["TrainingJobStatus"] not in ACTIVE:
            return job
        time.sleep(poll)


def outcome_line(what: str, job: dict) -> str:
    """The line a followed job ends with: `<what> Completed`, or the status with its FailureReason."""
    status = job["TrainingJobStatus"]
    return f"{what} {status}: {job['FailureReason']}" if job.get("FailureReason") else f"{what} {status}"
