"""Self-healing: an instance whose container dies is replaced; the endpoint keeps serving and the
event shows in its events log."""

from __future__ import annotations

import json
import os
import re
import signal
import time

from inference_support import calling_continuously, deploy, predict


def _instances(server, name: str) -> dict[str, int]:
    """container name -> host pid of its init, for the endpoint's running instances."""
    found = {}
    for meta in (server.home / "endpoints" / name / "instances").glob("*/container.json"):
        pid_file = meta.parent / "pid"
        data = json.loads(meta.read_text())
        if not (meta.parent / "exit.json").exists() and pid_file.exists():
            found[data["name"]] = int(pid_file.read_text())
    return found


def test_killed_container_is_replaced(server, sagemaker, runtime_client, inference_image):
    name = deploy(sagemaker, server, inference_image)
    (victim, pid), = _instances(server, name).items()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        running = _instances(server, name)
        if running and victim not in running:
            try:
                answer = predict(runtime_client, name, [[1, 1]])
                break
            except runtime_client.exceptions.ClientError:
                pass
        assert time.monotonic() < deadline, "the killed instance was not replaced"
        time.sleep(0.2)
    assert answer["predictions"] == [6.0]
    events = (server.home / "endpoints" / name / "events.log").read_text()
    assert f"Instance {victim} of variant AllTraffic is unhealthy" in events
    assert "in place of the lost instance" in events
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 1


def test_instance_failing_ping_is_replaced(server, sagemaker, runtime_client, inference_image):
    name = deploy(sagemaker, server, inference_image)
    (victim,) = _instances(server, name)
    runtime_client.invoke_endpoint(EndpointName=name, Body=b"sick")  # its /ping answers 503 from now on
    deadline = time.monotonic() + 60
    while victim in _instances(server, name) or len(_instances(server, name)) != 1:
        assert time.monotonic() < deadline, "the unhealthy instance was not replaced"
        time.sleep(0.2)
    events = (server.home / "endpoints" / name / "events.log").read_text()
    assert f"Instance {victim} of variant AllTraffic is unhealthy (GET /ping failed 2 times in a row)" in events
    deadline = time.monotonic() + 30
    while True:
        try:
            assert predict(runtime_client, name, [[1, 1]])["predictions"] == [6.0]
            break
        except runtime_client.exceptions.ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_no_failed_request_while_one_of_two_instances_dies(server, sagemaker, inference_image):
    from inference_support import create_config, create_model, unique, wait_status

    model = create_model(sagemaker, server, inference_image)
    name = unique("two-instances")
    sagemaker.create_endpoint(EndpointName=name,
                              EndpointConfigName=create_config(sagemaker, [("AllTraffic", model, 2, 1.0)]))
    assert wait_status(sagemaker, name)["EndpointStatus"] == "InService"
    with calling_continuously(server.client("sagemaker-runtime"), name) as (answers, errors):
        victim, pid = next(iter(_instances(server, name).items()))
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while victim in _instances(server, name) or len(_instances(server, name)) != 2:
            assert time.monotonic() < deadline, "the killed instance was not replaced"
            time.sleep(0.2)
    assert errors == []
    assert len(answers) > 10


def test_a_crash_looping_instance_is_replaced_ever_more_slowly_and_the_status_says_so(server, sagemaker,
                                                                                      inference_image):
    """Each instance serves a second and exits: healing replaces the first at once, then waits the
    health-check interval (0.5 s here) doubled with each loss in a row, and keeps trying."""
    name = deploy(sagemaker, server, inference_image, environment={"MODE": "crash-later", "CRASH_AFTER": "1"})
    events_log = server.home / "endpoints" / name / "events.log"
    paces: list[str] = []
    said: set[str] = set()
    deadline = time.monotonic() + 90
    while len(paces) < 4:
        assert time.monotonic() < deadline, f"only {len(paces)} replacements: {events_log.read_text()}"
        time.sleep(0.5)
        variant = sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        said |= {s.get("StatusMessage", "") for s in variant.get("VariantStatus", [])}
        paces = re.findall(r"\); replacing it( in [\d.]+ s)?",
                           events_log.read_text(), re.S)
    assert paces[:4] == ["", " in 1 s", " in 2 s", " in 4 s"], paces
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService"  # it keeps trying, as SageMaker does
    assert any("backing off" in message for message in said), said
    sagemaker.delete_endpoint(EndpointName=name)
