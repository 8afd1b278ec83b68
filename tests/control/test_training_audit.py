"""A training job's owner and its image pull in the audit log, on a real `forklift serve` pulling from
the real TLS basic-auth registry with a credentials-provider function."""

from __future__ import annotations

import json
import time

from training_support import job_request, unique, wait_for


def audit_records(home) -> list[dict]:
    return [json.loads(line) for path in sorted((home / "audit").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def pull_of(home, arn: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in audit_records(home) if r["event"] == "pull" and r["resource"] == arn]
        if found:
            assert len(found) == 1, found
            return found[0]
        assert time.monotonic() < deadline, f"no pull recorded for {arn}"
        time.sleep(0.2)


def test_a_jobs_pull_is_recorded_under_its_owner_with_registry_repository_and_digest(
        server, sagemaker, training_images, basic_registry):
    name = unique("audited")
    arn = sagemaker.create_training_job(**job_request(name, training_images.python))["TrainingJobArn"]
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    pull = pull_of(server.home, arn)
    assert pull["principal"] == "anonymous"  # no access key exists on this server: the embedded default
    assert (pull["registry"], pull["repository"], pull["outcome"]) == (
        basic_registry.address, "docker-local/my-training-image", "ok")
    assert pull["digest"] == training_images.python_digest
    [create] = [r for r in audit_records(server.home) if r.get("operation") == "CreateTrainingJob"
                and r["resource"] == arn]
    assert create["outcome"] == "ok"
    shown = server.forklift("jobs", "show", name)
    assert shown.returncode == 0, shown.stderr
    assert any(line.split() == ["Created", "by", "anonymous"] for line in shown.stdout.splitlines()), shown.stdout


def test_a_refused_pull_is_recorded_with_its_error_and_no_password_is_ever_written(
        server, sagemaker, training_images, basic_registry):
    name = unique("refused")
    request = job_request(name, training_images.python, provider="wrong-creds")
    arn = sagemaker.create_training_job(**request)["TrainingJobArn"]
    assert wait_for(sagemaker, name)["TrainingJobStatus"] == "Failed"
    pull = pull_of(server.home, arn)
    assert pull["outcome"] not in ("ok", "", None) and pull["digest"] is None
    text = "".join(path.read_text() for path in (server.home / "audit").glob("*.jsonl"))
    assert basic_registry.password not in text and "not-the-password" not in text
