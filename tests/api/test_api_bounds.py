"""The worst cases of a bounded HTTP edge, sent to a real `forklift serve`: each gets AWS's answer, not a 500."""

from __future__ import annotations

import base64

import httpx
import pytest
from botocore.exceptions import ClientError

from forklift.api.jsondepth import nests_deeper


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
