"""The CloudWatch Logs subset through boto3's `logs` client, over an in-memory LogSource."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from forklift.api import ApiServices, LogEvent, MemoryLogSource

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def source() -> MemoryLogSource:
    source = MemoryLogSource()
    source.create_group("/aws/sagemaker/Endpoints/ep-1", creation_time=5)
    for job in ("job-a", "job-b", "job-c"):
        for host in (1, 2):
            stream = f"{job}/algo-{host}-1700000000"
            base = {"job-a": 3000, "job-b": 1000, "job-c": 2000}[job] + host
            source.append(GROUP, stream, *(LogEvent(base + i * 10, f"{job} algo-{host} line {i}") for i in range(25)))
    return source


@pytest.fixture
def logs(source, serve_app):
    return serve_app(ApiServices(account="123456789012", log_source=source)).client("logs")


def messages(response: dict) -> list[str]:
    return [e["message"] for e in response["events"]]


def test_describe_log_groups(logs) -> None:
    groups = logs.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/aws/sagemaker/Endpoints/ep-1", GROUP]
    assert groups[1]["arn"] == f"arn:aws:logs:us-east-1:123456789012:log-group:{GROUP}:*"
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/T")["logGroups"]] \
        == [GROUP]
    first = logs.describe_log_groups(limit=1)
    second = logs.describe_log_groups(limit=1, nextToken=first["nextToken"])
    assert [g["logGroupName"] for g in first["logGroups"] + second["logGroups"]] == [g["logGroupName"] for g in groups]
    assert "nextToken" not in second


def test_describe_log_streams_like_the_sagemaker_sdk(logs) -> None:
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="job-b/")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["job-b/algo-1-1700000000", "job-b/algo-2-1700000000"]
    assert streams[0]["lastEventTimestamp"] == 1001 + 240
    assert streams[0]["arn"].endswith(f"log-group:{GROUP}:log-stream:job-b/algo-1-1700000000")


def test_describe_log_streams_order_and_pages(logs) -> None:
    seen, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True,
                                         limit=4, **kwargs)
        seen += [s["logStreamName"] for s in page["logStreams"]]
        token = page.get("nextToken")
        if not token:
            break
    assert [name.split("/")[0] for name in seen] == ["job-a", "job-a", "job-c", "job-c", "job-b", "job-b"]
    paginated = logs.get_paginator("describe_log_streams").paginate(logGroupName=GROUP,
                                                                    PaginationConfig={"PageSize": 5})
    assert len(paginated.build_full_result()["logStreams"]) == 6


def test_describe_log_streams_errors(logs) -> None:
    with pytest.raises(logs.exceptions.InvalidParameterException) as excinfo:
        logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", logStreamNamePrefix="job-a/")
    assert excinfo.value.response["Error"]["Message"] == "Cannot order by LastEventTime with a logStreamNamePrefix."
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="/aws/sagemaker/Nope")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_streams(logGroupName=GROUP, nextToken="not-a-token")


def test_get_log_events_forward_like_the_sdk_tail_loop(logs, source) -> None:
    stream = "job-a/algo-1-1700000000"
    first = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True, limit=10)
    assert messages(first)[0] == "job-a algo-1 line 0" and len(first["events"]) == 10
    rest, token = [], first["nextForwardToken"]
    while True:  # sagemaker.logs.log_stream: follow nextForwardToken until a page is empty
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True, nextToken=token)
        if not page["events"]:
            assert page["nextForwardToken"] == token  # nothing new: the same token comes back
            break
        rest += messages(page)
        token = page["nextForwardToken"]
    assert len(rest) == 15
    source.append(GROUP, stream, LogEvent(9999, "late line"))
    later = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True, nextToken=token)
    assert messages(later) == ["late line"] and later["events"][0]["ingestionTime"] == 9999


def test_get_log_events_default_reads_the_tail_and_pages_backward(logs) -> None:
    stream = "job-a/algo-2-1700000000"
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=5)
    assert messages(tail) == [f"job-a algo-2 line {i}" for i in range(20, 25)]
    before = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=5,
                                 nextToken=tail["nextBackwardToken"])
    assert messages(before) == [f"job-a algo-2 line {i}" for i in range(15, 20)]
    assert tail["nextBackwardToken"].startswith("b/") and tail["nextForwardToken"].startswith("f/")


def test_get_log_events_time_window(logs) -> None:
    stream = "job-b/algo-1-1700000000"  # timestamps 1001, 1011, ... 1241
    window = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startTime=1050, endTime=1101,
                                 startFromHead=True)
    assert [e["timestamp"] for e in window["events"]] == [1051, 1061, 1071, 1081, 1091]


def test_get_log_events_unknown_stream_or_group(logs) -> None:
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as excinfo:
        logs.get_log_events(logGroupName=GROUP, logStreamName="job-z/algo-1")
    assert excinfo.value.response["Error"]["Message"] == "The specified log stream does not exist."
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as excinfo:
        logs.get_log_events(logGroupName="/aws/none", logStreamName="s")
    assert excinfo.value.response["Error"]["Message"] == "The specified log group does not exist."
    with pytest.raises(ClientError) as excinfo:
        logs.get_log_events(logGroupName=GROUP, logStreamName="job-a/algo-1-1700000000", nextToken="z/1")
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"


def test_log_group_identifier_arn(logs) -> None:
    arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{GROUP}"
    streams = logs.describe_log_streams(logGroupIdentifier=arn, logStreamNamePrefix="job-c/")["logStreams"]
    assert len(streams) == 2


def test_filter_log_events_merges_streams_by_time_and_pages(logs) -> None:
    seen, token = [], None
    while True:
        page = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="job-b/", filterPattern='"line 1"',
                                      limit=3, **({"nextToken": token} if token else {}))
        seen += [(e["timestamp"], e["logStreamName"], e["message"]) for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    # "line 1", "line 10".."line 19" of both hosts, interleaved by time
    assert len(seen) == 22 and seen == sorted(seen)
    assert seen[:2] == [(1011, "job-b/algo-1-1700000000", "job-b algo-1 line 1"),
                        (1012, "job-b/algo-2-1700000000", "job-b algo-2 line 1")]
    assert len({e for e in seen}) == len(seen)  # no event twice across pages


def test_filter_log_events_terms_and_time_window(logs) -> None:
    found = logs.filter_log_events(logGroupName=GROUP, logStreamNames=["job-a/algo-2-1700000000"],
                                   filterPattern="?%line 2[34]$% ?MISSING -algo-1", startTime=3002, endTime=3300)
    assert messages(found) == ["job-a algo-2 line 23", "job-a algo-2 line 24"]
    assert [s["logStreamName"] for s in found["searchedLogStreams"]] == ["job-a/algo-2-1700000000"]
    assert messages(logs.filter_log_events(logGroupName=GROUP, filterPattern="job-c line", endTime=2001)) \
        == ["job-c algo-1 line 0"]  # both times are inclusive, as FilterLogEvents documents
    assert messages(logs.filter_log_events(logGroupName=GROUP, filterPattern="job-c line", endTime=2000)) == []


@pytest.mark.parametrize("pattern", ['{ $.level = "error" }', "[ip, user]", '"unclosed', "%(%"])
def test_filter_log_events_refuses_patterns_it_cannot_match(logs, pattern) -> None:
    with pytest.raises(ClientError) as excinfo:
        logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"


def test_filter_log_events_unknown_group(logs) -> None:
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="/aws/sagemaker/NoSuchGroup")
