"""A training job on a server whose FORKLIFT_HOME is a small, nearly full disk (a 96 MiB tmpfs filled
with ballast): a channel that does not fit and a model too big to pack or upload each fail their job with a
FailureReason naming the disk and FORKLIFT_HOME, leave nothing half-written behind, and the next job
on the same server completes."""

from __future__ import annotations

import os

import pytest
from training_support import busybox_job, unique, wait_for

from fixtures.serve import ServeProcess, remove_containers
from fixtures.smalldisk import MiB, fill, free, small_disk
from forklift.devregistry import install_ca

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


@pytest.fixture(scope="module")
def host_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("disk-full-files")
    (root / "big").mkdir()
    (root / "big" / "train.bin").write_bytes(os.urandom(40 * MiB))
    (root / "small").mkdir()
    (root / "small" / "train.csv").write_text("1,2\n3,4\n")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, host_files, training_images):
    with small_disk(tmp_path_factory.mktemp("disk-full") / "home", 96) as home:
        install_ca(pki, home / "certs.d", basic_registry.address)
        (home / "config.toml").write_text(f'stop_grace_seconds = 2\nfile_roots = ["{host_files}"]\n')
        running = ServeProcess(home)
        running.register_function("registry-creds", basic_registry.username, basic_registry.password)
        (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
        running.start()
        try:
            job = wait_for(running.client("sagemaker"), _start(running, training_images, "warm-up", "true"))
            assert job["TrainingJobStatus"] == "Completed", job  # the image is pulled once, before the disk fills
            yield running
        finally:
            running.stop()
            remove_containers(home)


def _start(server: ServeProcess, images, prefix: str, script: str, **overrides) -> str:
    name = unique(prefix)
    server.client("sagemaker").create_training_job(**busybox_job(name, images.busybox, script, **overrides))
    return name


def _channel(host_files, folder: str) -> dict:
    source = {"S3DataType": "S3Prefix", "S3Uri": f"file://{host_files / folder}",
              "S3DataDistributionType": "FullyReplicated"}
    return {"InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": source}}]}


def _leftovers(server: ServeProcess, name: str) -> list[str]:
    """Files bigger than 1 MiB the failed job left in its directory."""
    job = server.home / "jobs" / name
    return sorted(str(p.relative_to(job)) for p in job.rglob("*") if p.is_file() and p.stat().st_size > MiB)


def test_a_channel_that_does_not_fit_fails_clearly_and_the_next_job_runs(server, training_images, host_files):
    ballast = fill(server.home, leave=24 * MiB)
    try:
        name = _start(server, training_images, "too-big-channel", "true", **_channel(host_files, "big"))
        job = wait_for(server.client("sagemaker"), name)
        assert job["TrainingJobStatus"] == "Failed", job
        reason = job["FailureReason"]
        assert reason.startswith("ClientError: input data could not be downloaded"), reason
        assert "No space left on device" in reason and "FORKLIFT_HOME" in reason, reason
        assert _leftovers(server, name) == []
        assert free(server.home) > 20 * MiB  # the partial channel was removed
        name = _start(server, training_images, "fits", "cat /opt/ml/input/data/training/train.csv > /opt/ml/model/m",
                      **_channel(host_files, "small"))
        assert wait_for(server.client("sagemaker"), name)["TrainingJobStatus"] == "Completed"
    finally:
        ballast.unlink()


@pytest.mark.parametrize(("model_mib", "step"), [(14, "packing model.tar.gz"), (9, "writing s3://")])
def test_a_model_too_big_to_pack_or_upload_fails_clearly_and_the_next_job_runs(server, training_images,
                                                                               model_mib, step):
    """24 MiB free: 14 MiB of model cannot be packed beside itself; 9 MiB can, but not copied again
    into the embedded bucket."""
    ballast = fill(server.home, leave=24 * MiB)
    try:
        script = f"head -c {model_mib * MiB} /dev/urandom > /opt/ml/model/weights.bin"  # incompressible
        name = _start(server, training_images, "too-big-model", script)
        job = wait_for(server.client("sagemaker"), name)
        assert job["TrainingJobStatus"] == "Failed", job
        reason = job["FailureReason"]
        assert reason.startswith("ClientError: uploading the model to s3://your-output-data-bucket/model-folder"), \
            reason
        assert "No space left on device" in reason and "FORKLIFT_HOME" in reason and step in reason, reason
        assert _leftovers(server, name) == ["model/weights.bin"]  # the model stays; no half-packed archive
        assert not list((server.home / "buckets" / "your-output-data-bucket").rglob(f"{name}/**/*.tar.gz"))
        name = _start(server, training_images, "small-model", "echo small > /opt/ml/model/m")
        job = wait_for(server.client("sagemaker"), name)
        assert job["TrainingJobStatus"] == "Completed", job
        assert not (server.home / "jobs" / name / "archives").exists()  # scratch: uploaded, then removed
    finally:
        ballast.unlink()
