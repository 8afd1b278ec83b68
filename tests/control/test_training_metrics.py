"""A training job's MetricDefinitions on a real `forklift serve` and a real container: the values its
log lines print become FinalMetricDataList and CloudWatch series, which boto3's cloudwatch client and
the SageMaker SDK v2's `TrainingJobAnalytics` read; a regex RE2 cannot run is refused at
CreateTrainingJob; a container printing a hundred thousand matching lines, or lines built to make a
backtracking regex explode, stores a bounded number of points and ends on time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from training_support import busybox_job, unique, wait_for

from fixtures.serve import CREDENTIALS, REGION
from forklift.control.metricstore import MetricStore
from forklift.control.trainingmetrics import NAMESPACE, host_dimensions

SDK_V2 = Path(sys.prefix) / "sagemaker-sdk-v2" / "bin" / "python"
DEFINITIONS = [{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}, {"Name": "train:accuracy", "Regex": r"acc=(\S+)"},
               {"Name": "epoch", "Regex": r"epoch=(\d+)"}]
EPOCHS = ('echo "epoch=1 loss=0.9 acc=0.1"; sleep 3; echo "epoch=2 loss=0.5 acc=0.6"; sleep 3; '
          'echo "epoch=3 loss=0.25 acc=0.8"; echo "done, acc=not-a-number"')


def metric_job(sagemaker, images, script: str, definitions=DEFINITIONS) -> str:
    name = unique("metrics")
    request = busybox_job(name, images.busybox, script)
    request["AlgorithmSpecification"]["MetricDefinitions"] = definitions
    sagemaker.create_training_job(**request)
    return name


def final_metrics(job: dict) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}


def test_metric_lines_become_final_metrics_and_cloudwatch_series(server, sagemaker, training_images):
    name = metric_job(sagemaker, training_images, EPOCHS)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert final_metrics(job) == {"train:loss": 0.25, "train:accuracy": 0.8, "epoch": 3.0}
    for metric in job["FinalMetricDataList"]:
        assert job["TrainingStartTime"] - timedelta(seconds=1) <= metric["Timestamp"] <= job["TrainingEndTime"]

    cloudwatch = server.client("cloudwatch")
    listed = cloudwatch.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "Host", "Value": f"{name}/algo-1"}])
    assert sorted(m["MetricName"] for m in listed["Metrics"]) == ["epoch", "train:accuracy", "train:loss"]
    window = {"StartTime": job["TrainingStartTime"] - timedelta(minutes=1),
              "EndTime": job["TrainingEndTime"] + timedelta(minutes=1)}
    host = [{"Name": "Host", "Value": f"{name}/algo-1"}]
    answer = cloudwatch.get_metric_data(MetricDataQueries=[{"Id": "loss", "MetricStat": {"Metric": {
        "Namespace": NAMESPACE, "MetricName": "train:loss", "Dimensions": host}, "Period": 1, "Stat": "Maximum"}}],
        ScanBy="TimestampAscending", **window)
    assert answer["MetricDataResults"][0]["Values"] == [0.9, 0.5, 0.25]
    statistics = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="epoch", Dimensions=[{"Name": "TrainingJobName", "Value": name}],
        Period=3600, Statistics=["SampleCount", "Sum"], StartTime=window["StartTime"].replace(minute=0, second=0),
        EndTime=window["EndTime"].replace(minute=0, second=0) + timedelta(hours=1))
    assert sum(p["SampleCount"] for p in statistics["Datapoints"]) == 3
    assert sum(p["Sum"] for p in statistics["Datapoints"]) == 6

    if not SDK_V2.exists():
        pytest.skip(f"the SageMaker SDK v2 environment {SDK_V2.parent.parent} is missing (WITH_SDK_V2=1 "
                    "scripts/setup.sh installs it)")
    frame = training_job_analytics(server, name, ["train:loss", "epoch"], server.home.parent / f"sdk-home-{name}")
    by_metric = {}
    for metric, value in zip(frame["metric_name"], frame["value"], strict=True):
        by_metric.setdefault(metric, []).append(value)
    assert by_metric == {"train:loss": [0.9, 0.5, 0.25], "epoch": [1.0, 2.0, 3.0]}


SDK_SCRIPT = textwrap.dedent("""
    import json, sys
    import sagemaker
    from sagemaker.analytics import TrainingJobAnalytics
    frame = TrainingJobAnalytics(sys.argv[1], metric_names=sys.argv[2:], sagemaker_session=sagemaker.Session(),
                                 period=1).dataframe()
    print(json.dumps(frame.to_dict(orient="list")))
""")


def training_job_analytics(server, name: str, metrics: list[str], home: Path) -> dict:
    """`TrainingJobAnalytics(name, metrics, period=1).dataframe()` in the SDK v2's own environment."""
    (home / ".config" / "sagemaker").mkdir(parents=True)
    (home / ".config" / "sagemaker" / "config.yaml").write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
           "AWS_ENDPOINT_URL_SAGEMAKER": server.url, "AWS_ENDPOINT_URL_CLOUDWATCH": server.url,
           "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
           "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"]}
    result = subprocess.run([str(SDK_V2), "-c", SDK_SCRIPT, name, *metrics], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("regex, reason", [(r"(a)\1", "backreferences"), (r"(?=loss)loss=(\d+)", "lookaround"),
                                           (r"loss=([0-9", "missing ]")])
def test_a_regex_re2_cannot_run_is_refused_naming_the_definition(sagemaker, training_images, regex, reason):
    name = unique("bad-regex")
    request = busybox_job(name, training_images.busybox, "true")
    request["AlgorithmSpecification"]["MetricDefinitions"] = [DEFINITIONS[0], {"Name": "bad", "Regex": regex}]
    with pytest.raises(ClientError) as caught:
        sagemaker.create_training_job(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "AlgorithmSpecification.MetricDefinitions[1].Regex" in error["Message"]
    if reason != "missing ]":
        assert "RE2" in error["Message"]


def test_a_flood_of_matching_lines_is_bounded_and_keeps_the_last_value(server, sagemaker, training_images):
    flood = 'i=0; while [ $i -lt 100000 ]; do echo "loss=$i"; i=$((i+1)); done; echo "loss=0.125"'
    name = metric_job(sagemaker, training_images, flood, DEFINITIONS[:1])
    job = wait_for(sagemaker, name, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert final_metrics(job) == {"train:loss": 0.125}
    store = MetricStore(server.database.url_for(server.home))
    stored = store.states(NAMESPACE, host_dimensions(name))["train:loss"].count
    seconds = (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds()
    assert 1 <= stored <= seconds + 2  # one point a second at most, not one a line


def test_a_catastrophic_regex_runs_in_linear_time(sagemaker, training_images):
    # `(a+)+$` backtracks exponentially under Python's re on a run of a's not followed by the end
    lines = 'a=$(head -c 3000 /dev/zero | tr "\\0" a); i=0; while [ $i -lt 200 ]; do echo "${a}b"; i=$((i+1)); done'
    name = metric_job(sagemaker, training_images, lines + '; echo "aaa 7"',
                      [{"Name": "evil", "Regex": r"(a+)+$"}, {"Name": "seven", "Regex": r"aaa (\d)$"}])
    job = wait_for(sagemaker, name, timeout=180)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert final_metrics(job) == {"seven": 7.0}  # no line ends in a's: `(a+)+$` matches none of them


def test_a_job_re_adopted_after_a_restart_goes_on_with_its_series(server, sagemaker, training_images):
    gated = ('echo "loss=0.75"; until [ -f /opt/ml/model/go ]; do sleep 0.1; done; sleep 1.1; echo "loss=0.5"')
    name = metric_job(sagemaker, training_images, gated, DEFINITIONS[:1])
    deadline = time.monotonic() + 120
    while final_metrics(sagemaker.describe_training_job(TrainingJobName=name)) != {"train:loss": 0.75}:
        assert time.monotonic() < deadline, "the first value never reached FinalMetricDataList"
        time.sleep(0.2)
    server.stop()
    server.start()
    sagemaker = server.client("sagemaker")
    (server.home / "jobs" / name / "model" / "go").write_text("")
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert final_metrics(job) == {"train:loss": 0.5}
    metric = {"Namespace": NAMESPACE, "MetricName": "train:loss",
              "Dimensions": [{"Name": "TrainingJobName", "Value": name}]}
    answer = server.client("cloudwatch").get_metric_data(
        MetricDataQueries=[{"Id": "loss", "MetricStat": {"Metric": metric, "Period": 1, "Stat": "SampleCount"}}],
        ScanBy="TimestampAscending", StartTime=job["TrainingStartTime"] - timedelta(minutes=1),
        EndTime=job["TrainingEndTime"] + timedelta(minutes=1))
    assert answer["MetricDataResults"][0]["Values"] == [1.0, 1.0]  # each line once: nothing copied twice
