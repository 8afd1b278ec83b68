"""Script mode's code archive meets a faulty S3 as a channel does: a cut mid-object and a 503 burst are
ridden out (the same waits and retries); a download held for good is given up by StopTrainingJob, and
the job's code directory is taken away. S3 is moto behind the S3 fault proxy (fixtures.s3faultproxy)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import boto3
import pytest
from training_support import job_request, unique, wait_for

from fixtures.motoserver import MotoServer
from fixtures.s3faultproxy import S3FaultProxy
from fixtures.sagemaker_toolkit import HELPER_PY, TRAIN_PY, build_toolkit_image, sourcedir_tar_gz
from fixtures.serve import CREDENTIALS, ServeProcess, serving

BUCKET, KEY = "fault-code", "job/source/sourcedir.tar.gz"
CODE = f"s3://{BUCKET}/{KEY}"
OBJECT_PATH = f"/{BUCKET}/{KEY}"
WAITS = "registry_connect_timeout_seconds = 2\nregistry_read_timeout_seconds = 2\nregistry_retry_seconds = 6\n"
ENDED = 120.0  # generous bound on each job
# incompressible padding: the archive is megabytes, so a cut lands mid-object
ARCHIVE = sourcedir_tar_gz({"train.py": TRAIN_PY, "helper.py": HELPER_PY, "padding.txt": os.urandom(3 << 20).hex()})


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3FaultProxy]:
    with MotoServer(tmp_path_factory.mktemp("code-faults-moto") / "moto.log") as moto, \
            S3FaultProxy(moto.url) as proxy:
        direct = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", **CREDENTIALS)
        for bucket in (BUCKET, "your-output-data-bucket"):
            direct.create_bucket(Bucket=bucket)
        direct.put_object(Bucket=BUCKET, Key=KEY, Body=ARCHIVE)
        yield proxy


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, s3) -> Iterator[ServeProcess]:
    config = f'stop_grace_seconds = 5\ns3_endpoint_url = "{s3.url}"\n{WAITS}'
    yield from serving(tmp_path_factory.mktemp("code-faults-home"), pki, basic_registry, config)


@pytest.fixture(scope="module")
def image(tmp_path_factory, pki, basic_registry) -> str:
    return build_toolkit_image(tmp_path_factory, pki, basic_registry, "fault-toolkit")


@pytest.fixture
def proxy(s3) -> Iterator[S3FaultProxy]:
    s3.reset()
    yield s3
    s3.reset()


def start_job(server: ServeProcess, image: str, prefix: str) -> str:
    name = unique(prefix)
    server.client("sagemaker").create_training_job(**job_request(name, image, HyperParameters={
        "sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{CODE}"'}))
    return name


def test_the_code_download_rides_out_a_cut_and_a_503_burst(server, proxy, image):
    proxy.drop_after(len(ARCHIVE) // 3, times=2, path_contains=OBJECT_PATH)
    proxy.fail(503, times=3, method="GET", path_contains=OBJECT_PATH)
    name = start_job(server, image, "code-cut")
    job = wait_for(server.client("sagemaker"), name, timeout=ENDED)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert proxy.count("GET", 503) == 3


def test_a_stop_gives_up_a_held_code_download_and_removes_the_partial_code(server, proxy, image):
    proxy.stall(times=None, method="GET", after=1000, path_contains=OBJECT_PATH)
    sagemaker = server.client("sagemaker")
    name = start_job(server, image, "code-stop")
    deadline = time.monotonic() + ENDED
    while not any(path == OBJECT_PATH for _, path, _ in proxy.requests):
        assert time.monotonic() < deadline, "the job never asked for its code"
        time.sleep(0.05)
    sagemaker.stop_training_job(TrainingJobName=name)
    job = wait_for(sagemaker, name, until=("Stopped", "Failed", "Completed"), timeout=ENDED)
    assert job["TrainingJobStatus"] == "Stopped", job.get("FailureReason")
    assert job["SecondaryStatusTransitions"][-1]["StatusMessage"] == "Training job stopped before its container started"
    proxy.reset()  # the held answer ends; the abandoned download must still leave nothing
    job_dir = server.home / "jobs" / name
    deadline = time.monotonic() + ENDED
    while (job_dir / "code").exists() or list(job_dir.glob(".code*")):
        assert time.monotonic() < deadline, sorted(p.name for p in job_dir.iterdir())
        time.sleep(0.1)


def test_a_download_that_stalls_for_good_fails_naming_the_hyperparameter(server, proxy, image):
    proxy.stall(times=None, method="GET", after=1000, path_contains=OBJECT_PATH)
    name = start_job(server, image, "code-stall")
    job = wait_for(server.client("sagemaker"), name, timeout=ENDED)
    assert job["TrainingJobStatus"] == "Failed", job
    reason = job["FailureReason"]
    assert reason.startswith(f"ClientError: the code archive sagemaker_submit_directory names ({CODE}) could not "
                             "be staged into /opt/ml/code: ") and "stalled" in reason, reason
    assert not (server.home / "jobs" / name / "code").exists()
