"""Back-pressure on the control plane (forklift.api.admission): past `max_requests_in_flight` a call waits
up to `request_queue_seconds` for a place, then is answered 400 ThrottlingException, which botocore
retries by itself; a client gone midway gives its place back and logs no error. Real HTTP under
uvicorn with handlers that hold their place until the test lets them go; no timing is asserted."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import CREDENTIALS, REGION
from forklift.api import ApiServices
from forklift.api.admission import RequestGate
from forklift.api.edge import EdgeLimits
from forklift.api.errors import ApiError
from forklift.config import config_problems

WAIT = 20  # the longest a held handler waits to be let go (a test that forgets fails, not hangs)


class Holding:
    """DescribeTrainingJob handlers that each hold their place until `release`."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.go = threading.Event()
        self.services = ApiServices()
        self.services.register("DescribeTrainingJob", self.describe)
        self.services.register("ListTrainingJobs", lambda params, ctx: {"TrainingJobSummaries": []})

    def describe(self, params: dict, ctx) -> dict:
        self.entered.release()
        self.go.wait(WAIT)
        return {"TrainingJobName": params["TrainingJobName"]}

    def wait_entered(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=WAIT), "a held request never reached its handler"


@pytest.fixture
def holding() -> Iterator[Holding]:
    held = Holding()
    yield held
    held.go.set()


def _describe_in_background(pool: ThreadPoolExecutor, sm, name: str) -> Future:
    return pool.submit(sm.describe_training_job, TrainingJobName=name)


def test_past_the_limit_a_call_is_throttled_then_answered_once_places_free(serve_app, holding) -> None:
    server = serve_app(holding.services, EdgeLimits(max_requests_in_flight=2, request_queue_seconds=0.2,
                                                    max_requests_in_flight_per_caller=2))
    sm = server.client("sagemaker")
    with ThreadPoolExecutor(2) as pool:
        held = [_describe_in_background(pool, server.client("sagemaker"), f"held-{i}") for i in range(2)]
        holding.wait_entered(2)
        with pytest.raises(ClientError) as refused:
            sm.list_training_jobs()
        holding.go.set()
        assert [f.result(WAIT)["TrainingJobName"] for f in held] == ["held-0", "held-1"]
    error = refused.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"].startswith("Rate exceeded")
    assert "server.max_requests_in_flight" in error["Error"]["Message"]
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []  # the places came back


def test_a_call_waits_in_the_queue_for_a_place_that_frees(serve_app, holding) -> None:
    server = serve_app(holding.services, EdgeLimits(max_requests_in_flight=1, request_queue_seconds=WAIT))
    with ThreadPoolExecutor(2) as pool:
        first = _describe_in_background(pool, server.client("sagemaker"), "first")
        holding.wait_entered(1)
        queued = _describe_in_background(pool, server.client("sagemaker"), "queued")
        # Without a gate the second call would reach its handler at once; it must wait for the place.
        assert not holding.entered.acquire(timeout=1.0), "a second call ran while the only place was held"
        holding.go.set()
        assert first.result(WAIT)["TrainingJobName"] == "first"
        assert queued.result(WAIT)["TrainingJobName"] == "queued"


def test_one_caller_holds_at_most_its_share_and_others_still_get_places() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        gate = RequestGate(limit=4, queue_seconds=0.2, per_caller=2)
        release = asyncio.Event()
        holding = 0

        async def hold(caller: str) -> None:
            nonlocal holding
            async with gate.admitted(caller):
                holding += 1
                await release.wait()

        held = [asyncio.create_task(hold("key:greedy")) for _ in range(2)]
        while holding < 2:
            await asyncio.sleep(0.01)
        greedy_refused = False
        try:
            async with gate.admitted("key:greedy"):
                pass
        except ApiError as exc:
            greedy_refused = exc.code == "ThrottlingException"
        other_admitted = False
        async with gate.admitted("key:other"):
            other_admitted = True
        release.set()
        await asyncio.gather(*held)
        return greedy_refused, other_admitted, len(gate._callers)

    greedy_refused, other_admitted, callers_left = asyncio.run(scenario())
    assert greedy_refused, "a caller past its share was given a place"
    assert other_admitted, "another caller found no place while places were free"
    assert callers_left == 0  # nothing kept for callers that are gone


def test_botocore_retries_a_throttled_call_by_itself(serve_app, holding) -> None:
    server = serve_app(holding.services, EdgeLimits(max_requests_in_flight=1, request_queue_seconds=0))
    retrying = boto3.client("sagemaker", endpoint_url=server.url, region_name=REGION, **CREDENTIALS,
                            config=Config(retries={"max_attempts": 10, "mode": "legacy"}))
    seen: list[str] = []
    retrying.meta.events.register("needs-retry.sagemaker.ListTrainingJobs",
                                  lambda response, **kw: seen.append(response[1].get("Error", {}).get("Code", "OK")))
    with ThreadPoolExecutor(2) as pool:
        held = _describe_in_background(pool, server.client("sagemaker"), "held")
        holding.wait_entered(1)
        call = pool.submit(retrying.list_training_jobs)
        while not seen and not call.done():  # let the held one go once the call was throttled at least once
            threading.Event().wait(0.05)
        holding.go.set()
        assert call.result(WAIT)["TrainingJobSummaries"] == []
        held.result(WAIT)
    assert seen[0] == "ThrottlingException" and seen[-1] == "OK", seen


def test_a_client_gone_while_its_call_runs_gives_its_place_back_and_logs_no_error(serve_app, holding,
                                                                                   caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve_app(holding.services, EdgeLimits(max_requests_in_flight=1, request_queue_seconds=WAIT))
    address = urlsplit(server.url)
    body = b'{"TrainingJobName": "gone"}'
    with socket.create_connection((address.hostname, address.port), timeout=WAIT) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nhost: forklift\r\nx-amz-target: SageMaker.DescribeTrainingJob\r\n"
                     b"content-type: application/x-amz-json-1.1\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        holding.wait_entered(1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
    holding.go.set()
    sm = server.client("sagemaker")
    assert sm.describe_training_job(TrainingJobName="after")["TrainingJobName"] == "after"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


def test_the_admission_keys_are_read_and_checked() -> None:
    limits = EdgeLimits.from_config({"max_requests_in_flight": 8, "request_queue_seconds": 0.5})
    assert (limits.max_requests_in_flight, limits.request_queue_seconds) == (8, 0.5)
    assert config_problems({"server": {"max_requests_in_flight": 0, "request_queue_seconds": -1}}) == [
        "server.max_requests_in_flight = 0: must be an integer from 1 to 100000",
        "server.request_queue_seconds = -1: must be a number from 0 to 3600"]
