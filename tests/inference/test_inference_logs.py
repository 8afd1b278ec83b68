"""Endpoint logs through the CloudWatch Logs API, read with boto3's `logs` client as on AWS: group
`/aws/sagemaker/Endpoints/<name>`, a stream `<variant>/<container>` per instance with the model
server's output, and a `fleet-events` stream. The tests share one endpoint and run in file order:
the replacement and deletion tests come last because they change it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from inference_support import create_config, create_model, deploy, unique, wait_status

GROUPS = "/aws/sagemaker/Endpoints/"
STARTUP = "model server starting with ['serve'] mode normal"


@dataclass(frozen=True)
class Deployed:
    name: str
    group: str
    began: int  # epoch ms, just before CreateEndpoint


@pytest.fixture(scope="module")
def endpoint(server, inference_image) -> Deployed:
    began = int(time.time() * 1000)
    name = deploy(server.client("sagemaker"), server, inference_image)
    logs = server.client("logs")  # the event is written just after the status changes
    wait_for(lambda: "Endpoint is InService" in messages(logs, GROUPS + name, "fleet-events"), "InService event")
    return Deployed(name, GROUPS + name, began)


@pytest.fixture
def logs(server):
    return server.client("logs")


def running(server, name: str) -> dict[str, int]:
    """container name -> host pid of its init, for the endpoint's running instances."""
    found = {}
    for meta in (server.home / "endpoints" / name / "instances").glob("*/container.json"):
        if not (meta.parent / "exit.json").exists() and (meta.parent / "pid").exists():
            found[json.loads(meta.read_text())["name"]] = int((meta.parent / "pid").read_text())
    return found


def wait_for(check: Callable[[], object], what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


def messages(logs, group: str, stream: str) -> list[str]:
    return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                      startFromHead=True)["events"]]


def test_instance_output_is_a_log_stream(server, logs, endpoint):
    listed = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=GROUPS)["logGroups"]]
    assert endpoint.group in listed and all(g.startswith(GROUPS) for g in listed)
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=endpoint.group)["logGroups"]] \
        == [endpoint.group]

    (container,) = running(server, endpoint.name)
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=endpoint.group)["logStreams"]]
    assert streams == [f"AllTraffic/{container}", "fleet-events"]
    stream = f"AllTraffic/{container}"

    first = wait_for(lambda: logs.get_log_events(logGroupName=endpoint.group, logStreamName=stream,
                                                 startFromHead=True, limit=1)["events"], "the startup line")
    assert first[0]["message"] == STARTUP
    assert endpoint.began <= first[0]["timestamp"] <= time.time() * 1000
    page = logs.get_log_events(logGroupName=endpoint.group, logStreamName=stream, startFromHead=True)
    again = logs.get_log_events(logGroupName=endpoint.group, logStreamName=stream,
                                nextToken=page["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == page["nextForwardToken"]


def test_filter_log_events(logs, endpoint):
    found = wait_for(lambda: logs.filter_log_events(logGroupName=endpoint.group,
                                                    filterPattern='"model server starting"')["events"],
                     "the startup line")
    assert [(e["logStreamName"].split("/")[0], e["message"]) for e in found] == [("AllTraffic", STARTUP)]
    assert logs.filter_log_events(logGroupName=endpoint.group, filterPattern='"model server" -normal')["events"] == []

    every = logs.filter_log_events(logGroupName=endpoint.group)["events"]
    assert {e["logStreamName"] for e in every} == {found[0]["logStreamName"], "fleet-events"}
    assert [e["timestamp"] for e in every] == sorted(e["timestamp"] for e in every)
    fleet = logs.filter_log_events(logGroupName=endpoint.group, logStreamNames=["fleet-events"],
                                   filterPattern="InService")["events"]
    assert [e["message"] for e in fleet] == ["Endpoint is InService"]
    either = logs.filter_log_events(logGroupName=endpoint.group, filterPattern="?NoSuchWord ?InService")["events"]
    assert [e["message"] for e in either] == ["Endpoint is InService"]
    regex = logs.filter_log_events(logGroupName=endpoint.group, filterPattern="%starting with \\[.serve.\\]%")
    assert [e["message"] for e in regex["events"]] == [STARTUP]

    first = logs.filter_log_events(logGroupName=endpoint.group, limit=2)
    rest = logs.filter_log_events(logGroupName=endpoint.group, nextToken=first["nextToken"])
    assert [e["eventId"] for e in first["events"] + rest["events"]] == [e["eventId"] for e in every]


def test_unknown_group_and_unsupported_pattern(logs, endpoint):
    group = GROUPS + "no-such-endpoint"
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName=group)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName=group, logStreamName="AllTraffic/ep-000000000000")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName=group)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName=endpoint.group, logStreamName="AllTraffic/../../etc")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=endpoint.group, filterPattern='{ $.level = "error" }')


def test_cli_prints_the_log_group_in_time_order(server, endpoint):
    (container,) = running(server, endpoint.name)
    shown = server.forklift("endpoints", "logs", endpoint.name)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    creating = next(i for i, line in enumerate(lines) if "[fleet-events] Creating endpoint" in line)
    startup = next(i for i, line in enumerate(lines) if line.endswith(f"Z [AllTraffic/{container}] {STARTUP}"))
    assert creating < startup < next(i for i, line in enumerate(lines) if "Endpoint is InService" in line)
    missing = server.forklift("endpoints", "logs", "no-such-endpoint")
    assert missing.returncode != 0 and "no logs for endpoint no-such-endpoint" in missing.stderr


def test_replaced_instance_gets_a_new_stream(server, logs, endpoint):
    ((victim, pid),) = running(server, endpoint.name).items()
    follower = server.popen("endpoints", "logs", endpoint.name, "-f")
    followed: list[str] = []
    threading.Thread(target=lambda: [followed.append(line) for line in follower.stdout], daemon=True).start()
    try:
        wait_for(lambda: any(f"[AllTraffic/{victim}] {STARTUP}" in line for line in followed), "the follower")
        os.kill(pid, signal.SIGKILL)
        successor = wait_for(lambda: [c for c in running(server, endpoint.name) if c != victim], "a new instance",
                             60)[0]
        wait_for(lambda: any(f"[AllTraffic/{successor}] {STARTUP}" in line for line in followed),
                 "the new instance's output in `forklift endpoints logs -f`")
    finally:
        follower.terminate()
        follower.wait(10)
    wait_for(lambda: messages(logs, endpoint.group, f"AllTraffic/{successor}") == [STARTUP], "the new startup line")
    streams = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=endpoint.group,
                                                                      logStreamNamePrefix="AllTraffic/")["logStreams"]}
    assert streams == {f"AllTraffic/{victim}", f"AllTraffic/{successor}"}
    assert messages(logs, endpoint.group, f"AllTraffic/{victim}") == [STARTUP]

    unhealthy = logs.filter_log_events(logGroupName=endpoint.group, logStreamNames=["fleet-events"],
                                       filterPattern=f'"Instance {victim}" unhealthy')["events"]
    assert len(unhealthy) == 1 and "replacing it" in unhealthy[0]["message"]
    wait_for(lambda: logs.filter_log_events(logGroupName=endpoint.group, filterPattern=f'"{successor} now serve"')
             ["events"], "the replacement event")


def test_logs_outlive_the_endpoint(server, sagemaker, logs, endpoint):
    sagemaker.delete_endpoint(EndpointName=endpoint.name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=endpoint.name, WaiterConfig={"Delay": 1})
    listed = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=endpoint.group)["logGroups"]]
    assert listed == [endpoint.group]
    wait_for(lambda: messages(logs, endpoint.group, "fleet-events")[-1] == "Endpoint deleted", "the last event")
    streams = logs.describe_log_streams(logGroupName=endpoint.group, logStreamNamePrefix="AllTraffic/")["logStreams"]
    assert len(streams) == 2


def test_a_failed_endpoint_keeps_its_crashed_instance_output(server, sagemaker, logs, inference_image):
    model = create_model(sagemaker, server, inference_image, environment={"MODE": "crash"})
    name = unique("crashing")
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sagemaker,
                                                                                  [("AllTraffic", model, 1, 1.0)]))
    assert wait_status(sagemaker, name)["EndpointStatus"] == "Failed"
    (stream,) = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=GROUPS + name, logStreamNamePrefix="AllTraffic/")["logStreams"]]
    assert messages(logs, GROUPS + name, stream) == ["model server starting with ['serve'] mode crash",
                                                     "loading the model failed: weights are missing"]
    failed = wait_for(lambda: logs.filter_log_events(logGroupName=GROUPS + name, filterPattern="Failed")["events"],
                      "the failure event")
    assert [e["logStreamName"] for e in failed] == ["fleet-events"] and "exited with code 3" in failed[0]["message"]


def test_a_restarted_server_resumes_without_duplicates(own_server, inference_image):
    name = deploy(own_server.client("sagemaker"), own_server, inference_image)
    (container,) = running(own_server, name)
    group, stream = GROUPS + name, f"AllTraffic/{container}"
    wait_for(lambda: messages(own_server.client("logs"), group, stream) == [STARTUP], "the startup line")

    own_server.stop()
    stdout = own_server.home / "endpoints" / name / "instances" / container / "stdout.log"
    with open(stdout, "a") as f:  # what the container wrote while no server was watching
        f.write("written while the server was down\n")
    own_server.start()

    logs = own_server.client("logs")
    wait_for(lambda: len(messages(logs, group, stream)) > 1, "the line written during the restart")
    time.sleep(0.6)  # a few more pump rounds: nothing may be copied twice
    assert messages(logs, group, stream) == [STARTUP, "written while the server was down"]
