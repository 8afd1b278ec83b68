"""An S3 endpoint that breaks mid-transfer: channel staging and the model upload ride out what passes
and fail what does not, clearly and within the waits of config.toml.

A fault-injecting proxy (tests/fixtures/s3faultproxy.py) sits between forklift's S3 client and a real
S3 server (moto). The waits are made small in config.toml so a stall costs seconds, not minutes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.s3faultproxy import S3FaultProxy
from forklift.cancel import Cancel, Cancelled
from forklift.config import load_settings
from forklift.storage import ChannelError, StorageError, bucket_store, stage_channel

BUCKET = "fault-bucket"
KEY = "/train/data.bin"
OBJECT = os.urandom(3 << 20)  # one GET (below boto3's multipart threshold), long enough to cut mid-way
WAITS = "registry_connect_timeout_seconds = 1\nregistry_read_timeout_seconds = 1\nregistry_retry_seconds = 4\n"
BOUND = 120.0  # generous: a stall held to boto3's defaults would take many minutes


@pytest.fixture
def proxy(s3_server: str, storage_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3FaultProxy]:
    (storage_home / "config.toml").write_text(WAITS)
    with S3FaultProxy(s3_server) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", running.url)
        store = bucket_store(load_settings())
        store.make_bucket(BUCKET)
        source = storage_home / "object"
        source.write_bytes(OBJECT)
        store.upload(source, f"s3://{BUCKET}{KEY}")
        running.reset()
        yield running


def stage(dest: Path) -> Path:
    stage_channel({"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}}, dest,
                  settings=load_settings())
    return dest / "data.bin"


def upload(tmp_path: Path, key: str) -> str:
    source = tmp_path / "model.tar.gz"
    source.write_bytes(OBJECT[:100_000])
    uri = f"s3://{BUCKET}/{key}"
    bucket_store(load_settings()).upload(source, uri)
    return uri


def bounded(call: Callable[[], object]) -> BaseException | None:
    """What `call` raised (None if it returned), failing the test if it is still waiting after BOUND."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test to assert on
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert outcome, f"still waiting after {BOUND:g} s: a stalled S3 endpoint must fail within config.toml's waits"
    return outcome[0]


def test_a_connection_cut_mid_object_is_retried_and_the_channel_lands_whole(proxy: S3FaultProxy, tmp_path: Path):
    proxy.drop_after(len(OBJECT) // 3, times=2, path_contains=KEY)
    assert stage(tmp_path / "channel").read_bytes() == OBJECT
    assert sum(1 for method, path, _ in proxy.requests if method == "GET" and KEY in path) == 3  # two cut, one whole


def stage_as_a_job(dest: Path, cancel: Cancel) -> Path:
    """The channel staged as a training job stages it: stoppable, a chunk at a time."""
    stage_channel({"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}}, dest,
                  settings=load_settings(), cancel=cancel)
    return dest / "data.bin"


def test_a_stoppable_staging_rides_out_a_cut_and_lands_whole(proxy: S3FaultProxy, tmp_path: Path):
    proxy.drop_after(len(OBJECT) // 3, times=2, path_contains=KEY)
    assert stage_as_a_job(tmp_path / "channel", Cancel()).read_bytes() == OBJECT  # not the first third alone


def test_a_stop_ends_a_stalled_staging_and_stages_nothing(proxy: S3FaultProxy, tmp_path: Path):
    proxy.stall(after=len(OBJECT) // 3, path_contains=KEY)
    cancel = Cancel()
    threading.Timer(0.5, cancel.set).start()
    raised = bounded(lambda: stage_as_a_job(tmp_path / "channel", cancel))
    assert isinstance(raised, Cancelled), raised
    assert not (tmp_path / "channel" / "data.bin").exists()


def test_a_burst_of_503s_is_waited_out(proxy: S3FaultProxy, tmp_path: Path):
    proxy.fail(503, times=2, method="GET")
    assert stage(tmp_path / "channel").read_bytes() == OBJECT
    assert proxy.count("GET", 503) == 2


def test_a_stall_mid_object_once_is_retried(proxy: S3FaultProxy, tmp_path: Path):
    proxy.stall(times=1, method="GET", after=len(OBJECT) // 2, path_contains=KEY)
    assert stage(tmp_path / "channel").read_bytes() == OBJECT


def test_an_endpoint_that_stalls_for_good_fails_the_channel_naming_it(proxy: S3FaultProxy, tmp_path: Path):
    proxy.stall(times=None, method="GET", after=1000, path_contains=KEY)
    error = bounded(lambda: stage(tmp_path / "channel"))
    assert isinstance(error, ChannelError), error
    message = str(error)
    assert f"s3://{BUCKET}/train/" in message and "stalled" in message, message
    assert "registry_read_timeout_seconds" in message, message  # the setting that bounds it, to change
    assert not (tmp_path / "channel" / "data.bin").exists()  # no half object left where training reads it


def test_an_endpoint_that_never_answers_fails_the_channel_naming_it(proxy: S3FaultProxy, tmp_path: Path):
    proxy.stall(times=None)
    error = bounded(lambda: stage(tmp_path / "channel"))
    assert isinstance(error, ChannelError), error
    assert f"s3://{BUCKET}/train/" in str(error) and "stalled" in str(error), error


def test_a_burst_of_503s_during_the_model_upload_is_waited_out(proxy: S3FaultProxy, tmp_path: Path):
    proxy.fail(503, times=2, method="PUT")
    uri = upload(tmp_path, "out/job/model.tar.gz")
    assert proxy.count("PUT", 503) == 2
    proxy.reset()
    assert bucket_store(load_settings()).exists(uri)


def test_a_model_upload_to_an_endpoint_that_stalls_fails_naming_the_object(proxy: S3FaultProxy, tmp_path: Path):
    proxy.stall(times=None, method="PUT")
    error = bounded(lambda: upload(tmp_path, "out/job/model.tar.gz"))
    assert isinstance(error, StorageError), error
    message = str(error)
    assert f"s3://{BUCKET}/out/job/model.tar.gz" in message and "stalled" in message, message
    assert "Traceback" not in message
