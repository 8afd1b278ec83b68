"""State survives the server: a running job's container is re-adopted after a restart, a job whose
container vanished fails with a reason saying so; jobs beyond capacity wait as Pending."""

from __future__ import annotations

import json
import tarfile

from training_support import busybox_job, unique, wait_for

GATED = "echo before; until [ -f /opt/ml/model/go ]; do sleep 0.1; done; echo after; echo done > /opt/ml/model/m.txt"


def open_gate(server, name: str) -> None:
    (server.home / "jobs" / name / "model" / "go").write_text("")


def test_running_job_survives_a_server_restart(server, sagemaker, training_images):
    name = unique("survivor")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, GATED))
    wait_for(sagemaker, name, until=("Training",))
    server.stop()
    server.start()
    sagemaker = server.client("sagemaker")
    assert sagemaker.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training"
    open_gate(server, name)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    archive = server.home / "buckets" / "your-output-data-bucket" / "model-folder" / name / "output" / "model.tar.gz"
    with tarfile.open(archive) as tar:
        assert tar.extractfile("m.txt").read() == b"done\n"
    logs = server.forklift("jobs", "logs", name)
    assert logs.stdout.splitlines() == ["before", "after"], logs.stderr


def test_job_whose_container_vanished_fails_with_a_reason(server, sagemaker, training_images):
    from forklift.runtime import RuncRuntime

    name = unique("vanished")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, GATED))
    wait_for(sagemaker, name, until=("Training",))
    server.stop()
    meta = json.loads((server.home / "jobs" / name / "container" / "container.json").read_text())
    RuncRuntime().adopt(meta["name"]).stop(grace=0.5)  # removed behind the server's back
    server.start()
    job = wait_for(server.client("sagemaker"), name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "was gone when the forklift server restarted" in job["FailureReason"]


def test_jobs_beyond_capacity_wait_as_pending(server, sagemaker, training_images):
    first, second = unique("first"), unique("second")
    big = {"ResourceConfig": {"InstanceType": "ml.m5.24xlarge"}}  # clamped to the whole machine
    sagemaker.create_training_job(**busybox_job(first, training_images.busybox, GATED, **big))
    wait_for(sagemaker, first, until=("Training",))
    sagemaker.create_training_job(**busybox_job(second, training_images.busybox, "echo second", **big))
    pending = wait_for(sagemaker, second, until=("Pending",))
    assert pending["TrainingJobStatus"] == "InProgress"
    assert "Waiting for capacity" in pending["SecondaryStatusTransitions"][-1]["StatusMessage"]
    open_gate(server, first)
    assert wait_for(sagemaker, first)["TrainingJobStatus"] == "Completed"
    job = wait_for(sagemaker, second)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert "Pending" in [t["Status"] for t in job["SecondaryStatusTransitions"]]
