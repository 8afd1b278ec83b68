"""The worst cases of a bounded HTTP edge, sent to a real `forklift serve`: each gets AWS's answer, not a 500."""

from __future__ import annotations

import base64
import json
import socket
import urllib.parse

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from forklift.api.boundedhttp import MAX_HEAD, MAX_HEADER_FIELDS
from forklift.api.errors import ApiError
from forklift.api.jsondepth import nests_deeper
from forklift.api.validation import validate

# As conftest signs: the server checks signatures against these.
CREDENTIALS = {"aws_access_key_id": "AKIDFORKLIFTTEST", "aws_secret_access_key": "forklift-test-secret"}
REGION = "us-east-1"


def raw_post(server, target: str, body: bytes) -> httpx.Response:
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    return httpx.post(server.url + "/", content=body, headers=headers, timeout=30)


DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, b'{"TrainingJobName":' + DEEP_ARRAY + b"}",
                                  b"[" * 10_000], ids=["array", "object", "member", "unclosed"])
@pytest.mark.parametrize("target", ["SageMaker.CreateTrainingJob", "Logs_20140328.PutLogEvents"])
def test_deeply_nested_body_is_a_serialization_error(server, target, body) -> None:
    response = raw_post(server, target, body)
    assert response.status_code == 400, response.text
    assert response.json()["__type"].endswith("SerializationException")
    assert response.json()["message"] == "The request body nests deeper than 64 levels."


def test_nesting_up_to_the_limit_reaches_the_validator(server) -> None:
    response = raw_post(server, "SageMaker.CreateTrainingJob", b'{"Tags":' + b"[" * 63 + b"]" * 63 + b"}")
    assert response.status_code == 400
    assert response.json()["message"] == "Start of list found where not expected"  # the validator's answer


def test_deeply_nested_next_token_is_an_invalid_token(sagemaker) -> None:
    token = base64.urlsafe_b64encode(b"[" * 6000).decode().rstrip("=")
    with pytest.raises(ClientError) as excinfo:
        sagemaker.list_training_jobs(NextToken=token)
    error = excinfo.value.response["Error"]
    assert (error["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationException", 400)
    assert "Invalid pagination token" in error["Message"]


@pytest.mark.parametrize(("document", "deeper"), [
    (b"[" * 64 + b"]" * 64, False), (b"[" * 65 + b"]" * 65, True),
    (b'{"a":' * 64 + b"1" + b"}" * 64, False), (b'{"a":' * 65 + b"1" + b"}" * 65, True),
    (b"[{" * 32 + b"}]" * 32, False), (b"[{" * 33 + b"}]" * 33, True),
    (b'["' + b"[" * 100 + b'"]', False),  # brackets inside a string do not nest
    (b'["\\"' + b"[" * 100 + b'"]', False),  # nor after an escaped quote
    (b'["\\\\"' + b"[" * 100 + b"]" * 101, True),  # an escaped backslash ends the string
    (b"[[]" * 63, False), (b"[[]" * 64, True),  # never closed: open to the end
    (b"[]" * 100_000, False), (b"]" * 10_000, False),
    ((b"[" * 64 + b"]" * 64) * 1000, False), ((b"[" * 64 + b"]" * 64) * 1000 + b"[" * 65 + b"]" * 65, True),
])
def test_nesting_depth_scan(document, deeper) -> None:
    assert nests_deeper(document) is deeper


@pytest.fixture(scope="module")
def unchecked(server):
    """A SageMaker client that sends what it is given: botocore's own parameter checks are off."""
    config = Config(parameter_validation=False, retries={"max_attempts": 1}, read_timeout=30)
    return boto3.client("sagemaker", endpoint_url=server.url, region_name=REGION, config=config, **CREDENTIALS)


def _training_job(resources: dict | None = None, stopping: dict | None = None) -> dict:
    return {
        "TrainingJobName": "bounded-job", "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "AlgorithmSpecification": {"TrainingImage": "registry.example.com/algo:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10,
                           **(resources or {})},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, **(stopping or {})},
    }


def _refusal(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_a_training_job_on_no_instances_is_refused(unchecked) -> None:
    with pytest.raises(ClientError) as excinfo:
        unchecked.create_training_job(**_training_job({"InstanceCount": 0}))
    assert _refusal(excinfo) == (400, "ValidationException", (
        "1 validation error detected: Value '0' at 'resourceConfig.instanceCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"))


@pytest.mark.parametrize("stopping", [{"MaxRuntimeInSeconds": 1.5}, {"MaxRuntimeInSeconds": 3600.25}])
def test_a_fraction_for_an_integer_member_is_refused_not_truncated(unchecked, stopping) -> None:
    with pytest.raises(ClientError) as excinfo:
        unchecked.create_training_job(**_training_job(stopping=stopping))
    assert _refusal(excinfo) == (400, "SerializationException", "NUMBER_VALUE can not be converted to an Integer")


def test_integer_bounds_of_the_model_are_checked_after_conversion(unchecked) -> None:
    with pytest.raises(ClientError) as excinfo:
        unchecked.create_training_job(**_training_job({"VolumeSizeInGB": -1}, {"MaxRuntimeInSeconds": 0}))
    assert _refusal(excinfo) == (400, "ValidationException", (
        "2 validation errors detected: Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1; Value '-1' at 'resourceConfig.volumeSizeInGB' "
        "failed to satisfy constraint: Member must have value greater than or equal to 0"))


@pytest.mark.parametrize(("max_results", "status"), [(10.0, 200), (1e1, 200), (10.5, 400), (0, 400), (101, 400)])
def test_list_max_results_over_raw_http(server, max_results, status) -> None:
    response = raw_post(server, "SageMaker.ListTrainingJobs", json.dumps({"MaxResults": max_results}).encode())
    assert response.status_code == status, response.text
    if max_results == 10.5:
        assert response.json()["__type"].endswith("SerializationException")
    elif status == 400:
        expected = f"1 validation error detected: Value '{max_results}' at 'maxResults'"
        assert response.json()["message"].startswith(expected)


@pytest.mark.parametrize(("value", "accepted"), [(2, 2), (2.0, 2), (5e1, 50), (2.5, None), (-0.5, None)])
def test_integer_members_take_whole_numbers_only(value, accepted) -> None:
    params = {"MaxResults": value}
    if accepted is None:
        with pytest.raises(ApiError) as excinfo:
            validate("sagemaker", "ListTrainingJobs", params)
        assert excinfo.value.code == "SerializationException"
    else:
        result = validate("sagemaker", "ListTrainingJobs", params)
        assert result["MaxResults"] == accepted and type(result["MaxResults"]) is int


def _exchange(server, head: bytes) -> bytes:
    """Send a raw request head; the status line of the answer, or b"(closed)" when the server hung up."""
    address = urllib.parse.urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        try:
            sock.sendall(head)
            answer = sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return b"(closed)"
    return answer.split(b"\r\n", 1)[0] if answer else b"(closed)"


def _head(target: bytes, fields: bytes) -> bytes:
    return target + b"\r\nhost: forklift\r\n" + fields + b"content-length: 0\r\n\r\n"


TARGETS = [b"GET /ping HTTP/1.1", b"POST / HTTP/1.1", b"POST /endpoints/e/invocations HTTP/1.1"]


@pytest.mark.parametrize("fields", [
    b"".join(b"x-h%d: v\r\n" % i for i in range(10_000)),
    b"a: b\r\n" * (MAX_HEADER_FIELDS + 1),
    b"x-big: " + b"a" * (MAX_HEAD + 1) + b"\r\n",
], ids=["10k-fields", "101-small-fields", "one-field-over-64KiB"])
@pytest.mark.parametrize("target", TARGETS, ids=["uvicorn", "awsjson", "invoke"])
def test_an_oversized_head_is_431(server, target, fields) -> None:
    assert _exchange(server, _head(target, fields)) == b"HTTP/1.1 431 Request Header Fields Too Large"


@pytest.mark.parametrize("target", TARGETS, ids=["uvicorn", "awsjson", "invoke"])
def test_a_header_without_end_is_cut_off(server, target) -> None:
    answer = _exchange(server, target + b"\r\nhost: forklift\r\nx-big: " + b"a" * (8 << 20))
    assert answer in (b"HTTP/1.1 431 Request Header Fields Too Large", b"(closed)")
    assert httpx.get(server.url + "/ping", timeout=10).status_code == 200


@pytest.mark.parametrize("target", TARGETS, ids=["uvicorn", "awsjson", "invoke"])
def test_a_head_within_the_bounds_is_read(server, target) -> None:
    fields = b"".join(b"x-h%d: v\r\n" % i for i in range(MAX_HEADER_FIELDS - 3))
    fields += b"x-big: " + b"a" * (MAX_HEAD - len(fields) - 1024) + b"\r\n"
    assert _exchange(server, _head(target, fields)) != b"HTTP/1.1 431 Request Header Fields Too Large"
    if target.startswith(b"GET"):
        assert _exchange(server, _head(target, fields)) == b"HTTP/1.1 200 OK"
