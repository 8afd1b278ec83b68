"""Script mode: a framework estimator's `sagemaker_submit_directory` (the SDK's sourcedir.tar.gz) is staged
by forklift into /opt/ml/code, and the image (a stand-in for the SageMaker training toolkit, see
fixtures.sagemaker_toolkit) runs the user's entry point from there without any S3 access. Hostile,
oversized and missing archives fail the job with a FailureReason naming the hyperparameter and the URI,
and write nothing outside the job's code directory."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from training_support import job_request, unique, wait_for

from fixtures import bombs
from fixtures.sagemaker_toolkit import HELPER_PY, TRAIN_PY, build_toolkit_image, put_object, sourcedir_tar_gz
from fixtures.serve import ServeProcess, remove_containers
from forklift.control.scriptmode import container_hyperparameters
from forklift.devregistry import install_ca
from forklift.storage import EmbeddedBuckets

BUCKET = "code-bucket"


@pytest.fixture(scope="module")
def toolkit_image(tmp_path_factory, pki, basic_registry) -> str:
    return build_toolkit_image(tmp_path_factory, pki, basic_registry, "toolkit")


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry) -> Iterator[ServeProcess]:
    """A server of the module's own, on SQLite: staging the code does not touch the database."""
    home = tmp_path_factory.mktemp("script-mode-home")
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text("stop_grace_seconds = 5\n")
    running = ServeProcess(home)
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    buckets = EmbeddedBuckets(home / "buckets")
    for bucket in (BUCKET, "your-training-data-bucket", "your-output-data-bucket"):
        buckets.make_bucket(bucket)
    running.start()
    yield running
    running.stop()
    remove_containers(home)


def sdk_hyperparameters(job: str, submit: str, **user: object) -> dict[str, str]:
    """What the SageMaker SDK v2 sends for a framework estimator: every value JSON-encoded."""
    values = {**user, "sagemaker_program": "train.py", "sagemaker_submit_directory": submit,
              "sagemaker_container_log_level": 20, "sagemaker_job_name": job, "sagemaker_region": "us-west-2"}
    return {key: json.dumps(value) for key, value in values.items()}


def script_job(name: str, image: str, hyperparameters: dict[str, str], **overrides) -> dict:
    return job_request(name, image, HyperParameters=hyperparameters, **overrides)


def put_code(server: ServeProcess, key: str, data: bytes) -> str:
    return put_object(EmbeddedBuckets(server.home / "buckets"), f"s3://{BUCKET}/{key}/source/sourcedir.tar.gz",
                      data, server.home / "scratch")


def log_messages(server: ServeProcess, name: str) -> list[str]:
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    return [event["message"] for stream in streams
            for event in logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                             logStreamName=stream["logStreamName"], startFromHead=True)["events"]]


def test_the_users_entry_point_runs_from_the_staged_code(server, toolkit_image):
    sagemaker = server.client("sagemaker")
    name = unique("script")
    uri = put_code(server, name, sourcedir_tar_gz({"train.py": TRAIN_PY, "helper.py": HELPER_PY}))
    data = server.home / "buckets" / "your-training-data-bucket" / name
    data.mkdir()
    (data / "rows.csv").write_text("1,2\n3,4\n")
    hyperparameters = sdk_hyperparameters(name, uri, epochs=3, greeting="hello")
    sagemaker.create_training_job(**script_job(name, toolkit_image, hyperparameters, InputDataConfig=[
        {"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://your-training-data-bucket/{name}/"}}}]))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["HyperParameters"] == hyperparameters  # as the user sent them, not as the container saw them

    assert "user train.py: saw 2 rows epochs 3" in log_messages(server, name)
    archive = server.home / "buckets" / "your-output-data-bucket" / "model-folder" / name / "output" / "model.tar.gz"
    with tarfile.open(archive) as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model == {"epochs": 3, "greeting": "hello", "rows": 2, "uid": 1000, "described": "saw 2 rows"}
    job_dir = server.home / "jobs" / name
    seen = json.loads((job_dir / "input" / "config" / "hyperparameters.json").read_text())
    assert seen["sagemaker_submit_directory"] == '"/opt/ml/code"'
    assert seen["sagemaker_program"] == '"train.py"'
    assert (job_dir / "code" / "installed.marker").read_text() == "ok"  # the image's user owns the code
    assert not list(job_dir.glob(".code*"))  # the downloaded archive is not kept


def test_a_plain_value_is_rewritten_plain():
    """The SDK JSON-encodes; a hand-written request may not. Either way the container reads /opt/ml/code."""
    assert container_hyperparameters({"sagemaker_submit_directory": "s3://b/k.tar.gz", "lr": "1"}) == {
        "sagemaker_submit_directory": "/opt/ml/code", "lr": "1"}
    assert container_hyperparameters({"sagemaker_submit_directory": '"file:///data/k.tar.gz"'}) == {
        "sagemaker_submit_directory": '"/opt/ml/code"'}
    kept = {"sagemaker_submit_directory": '"/opt/ml/model/code"'}  # already in the container: nothing to stage
    assert container_hyperparameters(kept) == kept


def test_a_missing_archive_fails_the_job_naming_the_hyperparameter_and_uri(server, toolkit_image):
    sagemaker = server.client("sagemaker")
    name = unique("script-missing")
    uri = f"s3://{BUCKET}/{name}/source/sourcedir.tar.gz"
    hyperparameters = {"sagemaker_program": "train.py", "sagemaker_submit_directory": uri}  # plain, unquoted
    sagemaker.create_training_job(**script_job(name, toolkit_image, hyperparameters))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        f"ClientError: the code archive sagemaker_submit_directory names ({uri}) could not be staged into "
        f"/opt/ml/code: no such object: {uri}; upload a .tar.gz of your source_dir there")


def test_a_corrupt_archive_fails_the_job(server, toolkit_image):
    sagemaker = server.client("sagemaker")
    name = unique("script-corrupt")
    uri = put_code(server, name, b"this is not a gzip file at all")
    sagemaker.create_training_job(**script_job(name, toolkit_image, sdk_hyperparameters(name, uri)))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith(f"ClientError: the code archive sagemaker_submit_directory names ({uri}) could not be "
                             "staged into /opt/ml/code: ") and "not a readable tar.gz archive" in reason


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes = b"pwned") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


OUTSIDE = Path("/tmp") / f"forklift-script-mode-outside-{uuid.uuid4().hex[:8]}"
HOSTILE = {
    "dotdot": (lambda: _tar(_file("train.py", b"print(1)"), _file("../escape")), "contains '..'"),
    "absolute": (lambda: _tar(_file(f"{OUTSIDE}/abs")), "has an absolute path"),
    "symlink-out": (lambda: _tar(_link("out", "../../../.."), _file("out/pwned")), "points outside the archive"),
    "symlink-absolute": (lambda: _tar(_link("out", str(OUTSIDE)), _file("out/pwned")), "is absolute"),
    "hardlink-out": (lambda: _tar(_link("passwd", "/etc/passwd", tarfile.LNKTYPE)), "is not an earlier file"),
    "device": (lambda: _tar(_device("null")), "is a device node"),
    "huge": (lambda: bombs.zero_bomb(2 << 30), "unpacks to more than 1,073,741,824 bytes"),
}


@pytest.fixture(scope="module")
def outside() -> Iterator[Path]:
    """A directory outside the job's, which the hostile archives aim at."""
    OUTSIDE.mkdir()
    yield OUTSIDE
    shutil.rmtree(OUTSIDE)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_fails_the_job_and_writes_nothing_outside(server, toolkit_image, outside, case):
    build, refusal = HOSTILE[case]
    sagemaker = server.client("sagemaker")
    name = unique(f"script-{case}")
    uri = put_code(server, name, build())
    sagemaker.create_training_job(**script_job(name, toolkit_image, sdk_hyperparameters(name, uri)))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith(f"ClientError: the code archive sagemaker_submit_directory names ({uri}) could not be "
                             "staged into /opt/ml/code: ") and refusal in reason, reason
    job_dir = server.home / "jobs" / name
    assert not (job_dir / "code").exists()  # the partial code is removed
    assert not (job_dir / "escape").exists() and list(outside.iterdir()) == []
    assert sorted(p.name for p in job_dir.iterdir()) == ["input"], "only the config was written"
