"""Reading a CloudWatch Logs stream forward with boto3's `logs` client (forklift serve's or AWS's).

    events, token = read_forward(logs, "/aws/sagemaker/TrainingJobs", stream)          # all so far
    events, token = read_forward(logs, "/aws/sagemaker/TrainingJobs", stream, token)   # what is new
"""

from __future__ import annotations

from typing import Any


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
