"""Endpoint invocation metrics on a real `forklift serve` and endpoint: after a few InvokeEndpoint
calls (one the model answers 500), CloudWatch's `AWS/SageMaker` namespace holds the variant's
Invocations, Invocation5XXErrors, Invocation4XXErrors, ModelLatency and OverheadLatency for the
minute, as boto3's cloudwatch client reads them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from inference_support import deploy, predict

CALLS = 5


def sums(cloudwatch, endpoint: str, metric: str, statistics=("Sum", "SampleCount")) -> dict[str, float]:
    now = datetime.now(UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric, Period=3600, Statistics=list(statistics),
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1), EndTime=now + timedelta(hours=1))
    return {name: sum(p[name] for p in answer["Datapoints"]) for name in statistics}


def test_invocations_are_counted_per_variant(server, sagemaker, runtime_client, inference_image):
    endpoint = deploy(sagemaker, server, inference_image)
    for _ in range(CALLS):
        assert predict(runtime_client, endpoint, [[1, 1]])["predictions"] == [6.0]
    with pytest.raises(ClientError) as caught:
        runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"fail", ContentType="text/plain")
    assert caught.value.response["Error"]["Code"] == "ModelError"

    cloudwatch = server.client("cloudwatch")
    deadline = time.monotonic() + 60  # the counters reach the database within a flush (5 s)
    while sums(cloudwatch, endpoint, "Invocations")["Sum"] < CALLS + 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sums(cloudwatch, endpoint, "Invocations") == {"Sum": CALLS + 1, "SampleCount": CALLS + 1}
    assert sums(cloudwatch, endpoint, "Invocation5XXErrors") == {"Sum": 1, "SampleCount": CALLS + 1}
    assert sums(cloudwatch, endpoint, "Invocation4XXErrors") == {"Sum": 0, "SampleCount": CALLS + 1}
    latency = sums(cloudwatch, endpoint, "ModelLatency", ("SampleCount", "Minimum", "Maximum"))
    assert latency["SampleCount"] == CALLS + 1 and 0 < latency["Minimum"] <= latency["Maximum"]
    assert sums(cloudwatch, endpoint, "OverheadLatency", ("SampleCount",))["SampleCount"] == CALLS + 1

    listed = cloudwatch.list_metrics(Namespace="AWS/SageMaker",
                                     Dimensions=[{"Name": "EndpointName", "Value": endpoint}])
    assert {m["MetricName"] for m in listed["Metrics"]} == {
        "Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency"}
    assert all(sorted(d["Name"] for d in m["Dimensions"]) == ["EndpointName", "VariantName"] for m in listed["Metrics"])
    sagemaker.delete_endpoint(EndpointName=endpoint)
