"""CloudWatch's metrics API on a real `forklift serve`, through boto3 in each protocol botocore's model
lists (JSON 1.0, rpc-v2-cbor, query): ListMetrics, GetMetricStatistics and GetMetricData over points
stored in the server's database, their errors as CloudWatch words them, and bodies that must not
hurt the server."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from botocore.exceptions import ClientError

from fixtures.cloudwatch import PROTOCOLS, cloudwatch_client
from fixtures.serve import CREDENTIALS, REGION
from forklift.control.metricstore import Aggregate, MetricStore, Series

NAMESPACE = "/aws/sagemaker/TrainingJobs"
CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/GetMetricData"
CBOR_HEADERS = {"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor", "accept": "application/cbor"}


@pytest.fixture(params=PROTOCOLS)
def cloudwatch(request, server):
    return cloudwatch_client(server.url, request.param, REGION, CREDENTIALS)


@pytest.fixture
def job(server) -> tuple[str, float]:
    """A training job's `loss` series: 0.9, 0.5, 0.2 a second apart, then 0.1 a minute later; its host
    and the minute it starts at."""
    name = f"job-{uuid.uuid4().hex[:8]}"
    minute = float(int(time.time()) // 60 * 60 - 600)
    series = Series(NAMESPACE, "loss", f"Host={name}/algo-1")
    values = [(minute, 0.9), (minute + 1, 0.5), (minute + 2, 0.2), (minute + 60, 0.1)]
    other = Series(NAMESPACE, "accuracy", f"Host={name}/algo-1")
    store = MetricStore(server.database.url_for(server.home))
    store.write_samples([Aggregate(series, t, 1, v, v, v, "None") for t, v in values]
                        + [Aggregate(other, minute, 1, 0.7, 0.7, 0.7, "None")], [])
    return f"{name}/algo-1", minute


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_list_metrics_filters_by_name_and_dimension(cloudwatch, job):
    host, _ = job
    found = cloudwatch.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "Host", "Value": host}])["Metrics"]
    assert sorted(m["MetricName"] for m in found) == ["accuracy", "loss"]
    assert found[0]["Dimensions"] == [{"Name": "Host", "Value": host}]
    only = cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName="loss",
                                   Dimensions=[{"Name": "Host", "Value": host}])["Metrics"]
    assert [m["MetricName"] for m in only] == ["loss"]
    assert cloudwatch.list_metrics(Namespace="AWS/Nothing")["Metrics"] == []


def test_get_metric_statistics_per_minute(cloudwatch, job):
    host, minute = job
    answer = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="loss", Dimensions=[{"Name": "Host", "Value": host}],
        StartTime=at(minute - 60), EndTime=at(minute + 180), Period=60,
        Statistics=["Average", "SampleCount", "Minimum", "Maximum", "Sum"])
    points = sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])
    assert answer["Label"] == "loss"
    assert [p["Timestamp"].timestamp() for p in points] == [minute, minute + 60]
    first = points[0]
    assert first["SampleCount"] == 3 and first["Minimum"] == 0.2 and first["Maximum"] == 0.9
    assert first["Average"] == pytest.approx(1.6 / 3) and first["Sum"] == pytest.approx(1.6)
    assert points[1]["Average"] == 0.1 and points[1]["Unit"] == "None"


def test_get_metric_data_every_second_pages_and_scans_both_ways(cloudwatch, job):
    host, minute = job
    metric = {"Namespace": NAMESPACE, "MetricName": "loss", "Dimensions": [{"Name": "Host", "Value": host}]}
    query = [{"Id": "loss", "MetricStat": {"Metric": metric, "Period": 1, "Stat": "Average"}},
             {"Id": "none", "MetricStat": {"Metric": {**metric, "MetricName": "absent"}, "Period": 60,
                                           "Stat": "Sum"}}]
    window = {"StartTime": at(minute), "EndTime": at(minute + 120)}
    answer = cloudwatch.get_metric_data(MetricDataQueries=query, ScanBy="TimestampAscending", **window)
    loss, none = answer["MetricDataResults"]
    assert loss["Id"] == "loss" and loss["Label"] == "loss" and loss["StatusCode"] == "Complete"
    assert [t.timestamp() for t in loss["Timestamps"]] == [minute, minute + 1, minute + 2, minute + 60]
    assert loss["Values"] == [0.9, 0.5, 0.2, 0.1]
    assert none["Values"] == [] and none["StatusCode"] == "Complete"
    newest_first = cloudwatch.get_metric_data(MetricDataQueries=query[:1], **window)["MetricDataResults"][0]
    assert newest_first["Values"] == [0.1, 0.2, 0.5, 0.9]
    values, token, pages = [], None, 0
    while True:
        page = cloudwatch.get_metric_data(MetricDataQueries=query[:1], ScanBy="TimestampAscending", MaxDatapoints=3,
                                          **window, **({"NextToken": token} if token else {}))
        values += [v for r in page["MetricDataResults"] for v in r["Values"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert values == [0.9, 0.5, 0.2, 0.1] and pages == 2


@pytest.mark.parametrize("call, code", [
    (dict(Period=61, Statistics=["Average"]), "InvalidParameterValue"),
    (dict(Period=60, Statistics=["Average"], StartTime=at(0)), "InvalidParameterCombination"),
    (dict(Period=60, ExtendedStatistics=["p50"]), "InvalidParameterValue"),
    (dict(Period=60), "MissingParameter"),
])
def test_get_metric_statistics_refusals_use_cloudwatch_codes(cloudwatch, call, code):
    now = time.time()
    params = {"Namespace": NAMESPACE, "MetricName": "loss", "StartTime": at(now - 3600), "EndTime": at(now), **call}
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_statistics(**params)
    error = caught.value.response["Error"]
    assert error["Code"] == code, error
    assert error["Message"]
    if code == "InvalidParameterCombination":
        assert "exceeds the limit of 1440" in error["Message"]
    if code == "InvalidParameterValue" and "ExtendedStatistics" in call:
        assert "percentile" in error["Message"]


def test_metric_math_is_refused_by_name(cloudwatch):
    now = time.time()
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_data(MetricDataQueries=[{"Id": "e1", "Expression": "SUM(METRICS())"}],
                                   StartTime=at(now - 600), EndTime=at(now))
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Expression" in caught.value.response["Error"]["Message"]


def _cbor_error(server, body: bytes) -> dict:
    import cbor2

    response = httpx.post(server.url + CBOR_PATH, content=body, headers=CBOR_HEADERS, timeout=30)
    assert response.status_code == 400, response.text
    return cbor2.loads(response.content)


@pytest.mark.parametrize("body", [
    b"\x81" * 100_000 + b"\x01",  # arrays a hundred thousand deep
    b"\x9b" + (1 << 62).to_bytes(8, "big"),  # an array claiming 2**62 items
    b"\xa1\x61a\xd8\x23\x64(a+)",  # tag 35, a regular expression cbor2 would compile
    b"\xbf\x61a",  # a map cut short
    b"\xa1\x01\x02",  # a key that is no text
    b"\x01\x02",  # bytes after the item
])
def test_hostile_cbor_bodies_are_serialization_errors(server, body):
    error = _cbor_error(server, body)
    assert error["__type"] == "SerializationException", error
    assert "CBOR" in error["message"]
    assert httpx.get(server.url + "/ping", timeout=10).status_code == 200


def test_a_body_past_a_megabyte_is_refused_before_it_is_read(server):
    response = httpx.post(server.url + CBOR_PATH, content=b"\x00" * (2 << 20), headers=CBOR_HEADERS, timeout=30)
    assert response.status_code == 413


def test_a_query_request_with_another_version_or_action_is_refused(server):
    answer = httpx.post(server.url + "/", data={"Action": "ListMetrics", "Version": "2009-01-01"}, timeout=10)
    assert answer.status_code == 400 and b"<Code>InvalidParameterValue</Code>" in answer.content
    answer = httpx.post(server.url + "/", data={"Action": "Explode", "Version": "2010-08-01"}, timeout=10)
    assert answer.status_code == 400 and b"<Code>InvalidAction</Code>" in answer.content
