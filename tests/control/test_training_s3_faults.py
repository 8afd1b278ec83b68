"""A training job whose S3 endpoint breaks: staging a channel and uploading the model ride out a cut
connection and a burst of 503s, and a stall that does not end fails the job with a reason that names
the channel or the output path and says it stalled, within the waits of config.toml.

A real `forklift serve` reaches a real S3 server (moto) only through a fault-injecting proxy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from training_support import busybox_job, unique, wait_for

from fixtures.motoserver import MotoServer
from fixtures.s3faultproxy import S3FaultProxy
from fixtures.serve import CREDENTIALS, ServeProcess, serving

DATA = "s3://fault-data/train/"
OUTPUT = "s3://fault-output/models"
OBJECT_PATH = "/fault-data/train/data.bin"
OBJECT = os.urandom(3 << 20)
# Small waits, so a stall costs seconds; the registry shares them, and is on loopback too.
WAITS = "registry_connect_timeout_seconds = 2\nregistry_read_timeout_seconds = 2\nregistry_retry_seconds = 6\n"
ENDED = 120.0  # generous: with boto3's own waits a stall took minutes


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[tuple[MotoServer, S3FaultProxy]]:
    with MotoServer(tmp_path_factory.mktemp("s3-faults-moto") / "moto.log") as moto, \
            S3FaultProxy(moto.url) as proxy:
        direct = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", **CREDENTIALS)
        for bucket in ("fault-data", "fault-output"):
            direct.create_bucket(Bucket=bucket)
        direct.put_object(Bucket="fault-data", Key="train/data.bin", Body=OBJECT)
        yield moto, proxy


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, s3) -> Iterator[ServeProcess]:
    config = f'stop_grace_seconds = 5\ns3_endpoint_url = "{s3[1].url}"\n{WAITS}'
    yield from serving(tmp_path_factory.mktemp("s3-faults-home"), pki, basic_registry, config)


@pytest.fixture
def proxy(s3) -> Iterator[S3FaultProxy]:
    s3[1].reset()
    yield s3[1]
    s3[1].reset()


def run_job(server: ServeProcess, image: str, prefix: str) -> tuple[str, dict]:
    sagemaker = server.client("sagemaker")
    name = unique(prefix)
    channel = {"ChannelName": "training", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": DATA, "S3DataDistributionType": "FullyReplicated"}}}
    # The job fails unless the whole object was staged.
    script = f'test "$(wc -c < /opt/ml/input/data/training/data.bin)" -eq {len(OBJECT)} && echo ok > /opt/ml/model/ok'
    sagemaker.create_training_job(**busybox_job(name, image, script, InputDataConfig=[channel],
                                                OutputDataConfig={"S3OutputPath": OUTPUT}))
    return name, wait_for(sagemaker, name, timeout=ENDED)


def model_uploaded(s3, name: str) -> bool:
    direct = boto3.client("s3", endpoint_url=s3[0].url, region_name="us-east-1", **CREDENTIALS)
    found = direct.list_objects_v2(Bucket="fault-output", Prefix=f"models/{name}/output/model.tar.gz")
    return found.get("KeyCount", 0) == 1


def test_staging_rides_out_a_cut_mid_object_and_a_503_burst(server, proxy, s3, training_images):
    proxy.drop_after(len(OBJECT) // 3, times=2, path_contains=OBJECT_PATH)
    proxy.fail(503, times=3, method="GET", path_contains=OBJECT_PATH)
    name, job = run_job(server, training_images.busybox, "s3-cut")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert proxy.count("GET", 503) == 3
    assert sum(1 for method, path, _ in proxy.requests if method == "GET" and path == OBJECT_PATH) == 6  # 3+2 cut+1
    assert model_uploaded(s3, name)


def test_staging_from_an_endpoint_that_stalls_for_good_fails_naming_the_channel(server, proxy, training_images):
    proxy.stall(times=None, method="GET", after=1000, path_contains=OBJECT_PATH)
    _, job = run_job(server, training_images.busybox, "s3-stall")
    reason = job.get("FailureReason", "")
    assert job["TrainingJobStatus"] == "Failed", job
    assert DATA in reason and "stalled" in reason and "registry_read_timeout_seconds" in reason, reason
    assert "Traceback" not in reason


def test_the_model_upload_rides_out_a_503_burst(server, proxy, s3, training_images):
    proxy.fail(503, times=3, method="PUT")
    name, job = run_job(server, training_images.busybox, "s3-up-burst")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert proxy.count("PUT", 503) == 3
    assert model_uploaded(s3, name)


def test_a_model_upload_that_stalls_for_good_fails_naming_the_output_path(server, proxy, training_images):
    proxy.stall(times=None, method="PUT")
    name, job = run_job(server, training_images.busybox, "s3-up-stall")
    reason = job.get("FailureReason", "")
    assert job["TrainingJobStatus"] == "Failed", job
    assert OUTPUT in reason and f"{name}/output/model.tar.gz" in reason and "stalled" in reason, reason
    assert "Traceback" not in reason
