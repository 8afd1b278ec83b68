"""Jobs that fail, and why: registry errors name the registry, the container's failure file
becomes FailureReason, exit codes are reported; stop and MaxRuntimeInSeconds end in Stopped."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from training_support import busybox_job, unique, wait_for


def run_to_end(sagemaker, request: dict) -> dict:
    sagemaker.create_training_job(**request)
    return wait_for(sagemaker, request["TrainingJobName"])


def test_wrong_credentials_fail_with_a_reason_naming_the_registry(sagemaker, training_images, basic_registry):
    job = run_to_end(sagemaker, busybox_job(unique("wrong-creds"), training_images.busybox, "true",
                                            provider="wrong-creds"))
    assert job["TrainingJobStatus"] == "Failed"
    assert f"authentication to {basic_registry.address} failed" in job["FailureReason"]
    assert "not-the-password" not in job["FailureReason"]


def test_a_providers_exception_text_is_not_the_failure_reason(sagemaker, training_images, server, tmp_path):
    handler = tmp_path / "vault.py"
    handler.write_text("def handler(event, context):\n"
                       "    raise RuntimeError('vault unreachable: token hunter2-SECRET')\n")
    name = unique("vault")
    assert server.forklift("functions", "register", name, "--handler", str(handler)).returncode == 0
    job_name = unique("vault-job")
    job = run_to_end(sagemaker, busybox_job(job_name, training_images.busybox, "true", provider=name))
    assert job["TrainingJobStatus"] == "Failed"
    assert name in job["FailureReason"] and "RuntimeError" in job["FailureReason"]
    assert "hunter2-SECRET" not in job["FailureReason"]
    shown = server.forklift("jobs", "show", job_name)
    assert "RuntimeError" in shown.stdout and "hunter2-SECRET" not in shown.stdout + shown.stderr
    assert "token hunter2-SECRET" in server.forklift("functions", "logs", name, "--tail", "5").stdout


def test_missing_tag_is_manifest_unknown(sagemaker, training_images):
    image = training_images.busybox.rsplit(":", 1)[0] + ":no-such-tag"
    job = run_to_end(sagemaker, busybox_job(unique("missing-tag"), image, "true"))
    assert job["TrainingJobStatus"] == "Failed"
    assert "manifest unknown" in job["FailureReason"] and "no-such-tag" in job["FailureReason"]


def test_untrusted_ca_is_reported(sagemaker, training_images, fault_proxy):
    # The proxy serves basic_registry's content with a certificate this server's home does not trust.
    image = training_images.busybox.replace(training_images.busybox.split("/")[0], fault_proxy.address)
    job = run_to_end(sagemaker, busybox_job(unique("untrusted"), image, "true"))
    assert job["TrainingJobStatus"] == "Failed"
    assert "certificate signed by unknown authority" in job["FailureReason"]
    assert fault_proxy.address in job["FailureReason"]


def test_exit_code_and_failure_file(sagemaker, training_images):
    script = 'echo "bad input: column 3 is empty" > /opt/ml/output/failure; exit 3'
    job = run_to_end(sagemaker, busybox_job(unique("exit3"), training_images.busybox, script))
    assert job["TrainingJobStatus"] == "Failed" and job["SecondaryStatus"] == "Failed"
    assert job["FailureReason"] == "bad input: column 3 is empty"

    job = run_to_end(sagemaker, busybox_job(unique("exit4"), training_images.busybox, "exit 4"))
    assert job["FailureReason"] == "AlgorithmError: the training container exited with code 4"


def test_failure_file_is_cut_at_1024_characters(sagemaker, training_images):
    script = "printf 'x%.0s' $(seq 3000) > /opt/ml/output/failure; exit 1"
    job = run_to_end(sagemaker, busybox_job(unique("long-failure"), training_images.busybox, script))
    assert job["FailureReason"] == "x" * 1024


def test_max_runtime_exceeded_stops_the_job(sagemaker, training_images):
    request = busybox_job(unique("max-runtime"), training_images.busybox,
                          "trap 'echo got TERM; exit 143' TERM; echo ready > /opt/ml/model/partial; "
                          "while true; do sleep 0.2; done",
                          StoppingCondition={"MaxRuntimeInSeconds": 2})
    job = run_to_end(sagemaker, request)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "MaxRuntimeExceeded"
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses[-3:] == ["Stopping", "Uploading", "MaxRuntimeExceeded"]
    assert "FailureReason" not in job


def test_stop_training_job(sagemaker, training_images, server):
    name = unique("stop-me")
    sagemaker.create_training_job(**busybox_job(
        name, training_images.busybox, "trap 'echo stopping cleanly; exit 143' TERM; echo started; "
                                       "while true; do sleep 0.2; done"))
    wait_for(sagemaker, name, until=("Training",))
    sagemaker.stop_training_job(TrainingJobName=name)
    described = sagemaker.describe_training_job(TrainingJobName=name)
    assert described["TrainingJobStatus"] in ("Stopping", "Stopped")
    sagemaker.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    job = sagemaker.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    result = server.forklift("jobs", "logs", name)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout and "stopping cleanly" in result.stdout
    with pytest.raises(ClientError) as error:
        sagemaker.stop_training_job(TrainingJobName=name)
    assert error.value.response["Error"]["Code"] == "ValidationException"
