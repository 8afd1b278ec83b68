"""The bounds of a job's metric points (control.trainingmetrics) on a real SQLite database: one point
per metric per second (the last value printed in it), at most MAX_POINTS per metric, the newest
moving forward past that so the final value stays right, a restart going on from what is stored,
lines cut to MAX_LINE before they are matched, and definitions RE2 takes one by one but not together
refused before the job runs (one already accepted runs without metrics); a NUL, which PostgreSQL's
text cannot hold, in no series key."""

from __future__ import annotations

import threading
import time

import pytest

from forklift.config import Settings
from forklift.control.errors import InvalidRequest
from forklift.control.metricstore import MetricStore, Series
from forklift.control.models import TrainingJobRow
from forklift.control.runner import JobRunner
from forklift.control.settings import control_settings
from forklift.control.store import JobStore
from forklift.control.trainingmetrics import (
    MAX_LINE,
    MAX_POINTS,
    NAMESPACE,
    MetricDefinition,
    TrainingMetrics,
    check_definitions,
    host_dimensions,
    job_dimensions,
)

LOSS = [MetricDefinition("loss", r"loss=([0-9.]+)")]
LOSS_DEFINITION = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]


def store_in(tmp_path) -> MetricStore:
    return MetricStore(f"sqlite:///{tmp_path / 'forklift.db'}")


def latest(store: MetricStore, job: str) -> dict[str, tuple[float, float]]:
    return {a.series.metric_name: (a.timestamp, a.sum) for a in store.latest(NAMESPACE, host_dimensions(job))}


def test_one_point_per_second_the_last_value_printed(tmp_path):
    store = store_in(tmp_path)
    metrics = TrainingMetrics(store, "job", LOSS)
    metrics([(1_000_000, "loss=3"), (1_000_400, "loss=2"), (1_000_900, "noise"), (1_001_000, "loss=1")])
    metrics([(1_001_500, "loss=0.5")])  # the same second as the drain before: it replaces that point
    assert store.states(NAMESPACE, host_dimensions("job"))["loss"].count == 2
    assert latest(store, "job") == {"loss": (1001.0, 0.5)}
    assert store.states(NAMESPACE, job_dimensions("job"))["loss"].count == 2


def test_past_the_cap_the_newest_point_moves_forward(tmp_path):
    store = store_in(tmp_path)
    metrics = TrainingMetrics(store, "job", LOSS)
    seconds = MAX_POINTS + 50
    for start in range(0, seconds, 1000):  # drains of a thousand seconds' lines
        metrics([(s * 1000, f"loss={s}") for s in range(start, min(seconds, start + 1000))])
    assert store.states(NAMESPACE, host_dimensions("job"))["loss"].count == MAX_POINTS
    assert latest(store, "job") == {"loss": (float(seconds - 1), float(seconds - 1))}
    restarted = TrainingMetrics(store, "job", LOSS)  # a new server reads where the series stands
    restarted([(seconds * 1000, "loss=0.25")])
    assert store.states(NAMESPACE, host_dimensions("job"))["loss"].count == MAX_POINTS
    assert latest(store, "job") == {"loss": (float(seconds), 0.25)}


def test_a_value_past_the_matched_length_is_not_read(tmp_path):
    store = store_in(tmp_path)
    metrics = TrainingMetrics(store, "job", LOSS)
    metrics([(1000, "x" * MAX_LINE + "loss=1"), (2000, "x" * (MAX_LINE - 10) + "loss=2")])
    assert latest(store, "job") == {"loss": (2.0, 2.0)}


def test_definitions_too_big_together_are_refused_at_create(tmp_path):
    # each is within the model's 500 characters and RE2's budget alone; forty of them are not
    regex = r"loss=(\d+)" + "[a-z]{1,100}" * 30
    definitions = [{"Name": f"m{i}", "Regex": regex + str(i)} for i in range(40)]
    check_definitions({"AlgorithmSpecification": {"MetricDefinitions": definitions[:1]}})
    with pytest.raises(InvalidRequest) as caught:
        check_definitions({"AlgorithmSpecification": {"MetricDefinitions": definitions}})
    assert "MetricDefinitions" in str(caught.value) and "together" in str(caught.value)


def test_a_series_key_holding_a_nul_has_no_points_on_either_engine(tmp_path, database_env):
    """PostgreSQL refuses to compare text holding a NUL; no stored series holds one, so none is found."""
    store = MetricStore(Settings(home=tmp_path).database_url)
    nul = Series(NAMESPACE, "loss\x00", "Host=x\x00/algo-1")
    assert store.series(NAMESPACE, "loss\x00") == [] and store.series("a\x00b") == []
    assert store.series(NAMESPACE, after=nul) == []  # only a forged NextToken holds one
    assert store.points(nul, 0, 1e12, 10) == []


def test_a_metric_name_holding_a_nul_is_refused_at_create():
    with pytest.raises(InvalidRequest, match=r"MetricDefinitions\[0\].Name holds a NUL"):
        check_definitions({"AlgorithmSpecification": {"MetricDefinitions": [{"Name": "a\x00", "Regex": "a=(\\d)"}]}})


def test_a_job_whose_definitions_cannot_be_applied_runs_without_metrics(tmp_path):
    """A row accepted before its definitions were checked together: its container is running already, so the
    runner goes on without metrics rather than fail the job and leave the container running."""
    settings = Settings(home=tmp_path)
    store = JobStore(settings.database_url)
    regex = r"loss=(\d+)" + "[a-z]{1,100}" * 30
    definitions = [{"Name": f"m{i}", "Regex": regex + str(i)} for i in range(40)]
    request = {"TrainingJobName": "too-big",
               "AlgorithmSpecification": {"TrainingImage": "busybox", "MetricDefinitions": definitions}}
    now = time.time()
    store.insert(TrainingJobRow(name="too-big", arn="arn:aws:sagemaker:us-east-1:000000000000:training-job/too-big",
                                request=request, status="InProgress", secondary_status="Training", transitions=[],
                                created_at=now, modified_at=now))
    runner = JobRunner(settings, control_settings(settings), store, None, "too-big",  # type: ignore[arg-type]
                       threading.Event(), threading.Event())
    assert runner._metrics() is None
    request["AlgorithmSpecification"]["MetricDefinitions"] = LOSS_DEFINITION
    store.update("too-big", lambda row: setattr(row, "request", {**request}))
    assert isinstance(runner._metrics(), TrainingMetrics)
