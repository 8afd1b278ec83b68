"""Staging given up by StopTrainingJob goes on in its own thread until its source answers; it must
then write nothing more into the stopped job's directory, and take away what it had staged."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.stallserver import GatedHttp
from forklift.cancel import Cancel, Cancelled
from forklift.config import load_settings
from forklift.control import staging

WAIT = 60.0  # a generous bound on every wait below


@pytest.fixture
def source() -> Iterator[GatedHttp]:
    served = GatedHttp(b"a,b\n" * (1 << 18), path="/data/train.csv")  # 1 MiB: more than one chunk
    yield served
    served.close()


def test_staging_given_up_by_a_stop_leaves_the_job_no_data(tmp_path: Path, monkeypatch, source) -> None:
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "home"))
    settings = load_settings()
    directory = tmp_path / "home" / "jobs" / "stopped"
    request = {"InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": source.url, "S3DataDistributionType": "FullyReplicated"}}}]}
    cancel = Cancel()

    def stage() -> object:
        return staging.stage_inputs(directory, request, settings, cancel)

    given_up = []

    def runner() -> None:
        try:
            cancel.call(stage, name="staging-under-test")
        except Cancelled as exc:
            given_up.append(exc)

    waiting = threading.Thread(target=runner, daemon=True)
    waiting.start()
    assert source.asked.wait(WAIT), "staging never asked the source for the channel"
    cancel.set()  # StopTrainingJob
    waiting.join(WAIT)
    assert len(given_up) == 1
    abandoned = [t for t in threading.enumerate() if t.name == "staging-under-test"]
    source.release()  # the source answers after all
    assert source.answered.wait(WAIT)
    for thread in abandoned:
        thread.join(WAIT)
        assert not thread.is_alive(), "the abandoned staging never ended"
    assert not (directory / "input" / "data" / "training" / "train.csv").exists()
    staged = [p for p in directory.rglob("*") if p.is_file()]
    assert staged == [], staged
