"""InvokeEndpoint as botocore sends it: defaults, headers, payload limit and AWS's errors."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from inference_support import deploy, predict


@pytest.fixture(scope="module")
def endpoint(server, inference_image) -> str:
    return deploy(server.client("sagemaker"), server, inference_image)


def test_prediction_with_headers_passed_through(runtime_client, endpoint):
    response = runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"[[1, 2]]", ContentType="text/csv",
                                              Accept="application/jsonlines", CustomAttributes="trace=42",
                                              InferenceId="req-1")
    answer = json.loads(response["Body"].read())
    assert answer["predictions"] == [9.0]
    assert answer["content_type"] == "text/csv"
    assert answer["accept"] == "application/jsonlines"
    assert answer["custom"] == "trace=42"
    assert response["CustomAttributes"] == "seen=trace=42"
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_content_type_defaults_to_octet_stream(runtime_client, endpoint):
    response = runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"[[0, 0]]")
    assert json.loads(response["Body"].read())["content_type"] == "application/octet-stream"


def test_payload_over_6_mib_is_a_validation_error(runtime_client, endpoint):
    with pytest.raises(ClientError) as excinfo:
        runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"x" * (7 * 1000 * 1000),
                                       ContentType="application/json")
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_container_error_is_a_model_error(runtime_client, endpoint):
    with pytest.raises(runtime_client.exceptions.ModelError) as excinfo:
        runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"fail", ContentType="application/json")
    error = excinfo.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert error["OriginalMessage"] == "model exploded on this input"
    assert "Received server error (500)" in error["Error"]["Message"]
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    assert group in error["Error"]["Message"]
    assert error["LogStreamArn"].endswith(f":log-group:{group}")  # where the container's output is


def test_unknown_endpoint_is_a_validation_error(runtime_client):
    with pytest.raises(ClientError) as excinfo:
        runtime_client.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"[]")
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    assert excinfo.value.response["Error"]["Message"] == \
        "Endpoint no-such-endpoint of account 000000000000 not found."


def test_unknown_target_variant_is_a_validation_error(runtime_client, endpoint):
    with pytest.raises(ClientError) as excinfo:
        runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"[]", TargetVariant="Nope")
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    assert "Nope" in excinfo.value.response["Error"]["Message"]


def test_round_trip_of_a_large_answer(runtime_client, endpoint):
    rows = [[i, i] for i in range(60000)]  # ~1 MB each way: streamed back
    answer = predict(runtime_client, endpoint, rows)
    assert answer["predictions"][-1] == 5 * 59999 + 1
