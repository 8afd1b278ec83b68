"""`forklift jobs` as scripts use it: JSON in the API's shapes, whole cells in pipes, `ls` and `list`,
one way to find the server, `logs -f` ending with the outcome as its exit code, and the job's status
message saying when its instance type was clamped to this machine."""

from __future__ import annotations

import json
import os

from training_support import busybox_job, job_request, unique, wait_for


def test_list_and_show_print_the_api_shapes_as_json(server, sagemaker, training_images):
    # Long enough that an 80-column table would have cut it.
    name = unique("a-training-job-with-a-name-long-enough-to-be-cut-by-any-terminal-table")[:63]
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "echo done"))
    wait_for(sagemaker, name)

    shown = server.forklift("jobs", "show", name, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    job = json.loads(shown.stdout)
    described = sagemaker.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobArn"] == described["TrainingJobArn"] and "ResponseMetadata" not in job
    assert job["TrainingJobStatus"] == "Completed"
    assert job["CreationTime"].startswith(described["CreationTime"].strftime("%Y-%m-%dT%H:%M"))

    for verb in ("list", "ls"):
        listed = server.forklift("jobs", verb, "--name-contains", name[:40], "--output", "json")
        assert listed.returncode == 0, listed.stderr
        assert [j["TrainingJobName"] for j in json.loads(listed.stdout)["TrainingJobSummaries"]] == [name]

    table = server.forklift("jobs", "list", "--name-contains", name[:40])
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["NAME", "STATUS", "SECONDARY", "CREATED", "ENDED"]
    assert name in table.stdout.split()  # whole, not cut with an ellipsis
    assert all(line == line.rstrip() for line in table.stdout.splitlines())


def test_logs_follow_ends_with_the_outcome_as_exit_code(server, sagemaker, training_images):
    done, failed, stopped = unique("logs-ok"), unique("logs-fail"), unique("logs-stop")
    sagemaker.create_training_job(**busybox_job(done, training_images.busybox, "echo line one; echo line two"))
    sagemaker.create_training_job(**busybox_job(failed, training_images.busybox,
                                                "echo about to fail; echo broken > /opt/ml/output/failure; exit 3"))
    sagemaker.create_training_job(**busybox_job(stopped, training_images.busybox, "echo sleeping; sleep 300"))

    ok = server.forklift("jobs", "logs", "-f", done)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["line one", "line two"]
    assert ok.stderr.strip().endswith(f"training job {done} Completed")

    bad = server.forklift("jobs", "logs", "--follow", failed)
    assert bad.returncode == 1
    assert "about to fail" in bad.stdout and f"training job {failed} Failed: broken" in bad.stderr

    wait_for(sagemaker, stopped, until=("Training",))
    ps = server.forklift("ps", "-o", "json")
    assert ps.returncode == 0, ps.stderr
    rows = {(r["Kind"], r["Name"]): r for r in json.loads(ps.stdout)["Processes"]}
    assert rows[("server", server.url)]["Pid"] == server.process.pid
    running = rows[("job", stopped)]
    assert running["Status"] == "InProgress / Training" and running["Pid"] > 0
    assert running["Detail"].startswith(f"container tj-{stopped}-")
    table = server.forklift("ps")
    assert stopped in table.stdout and "InProgress / Training" in table.stdout
    follower = server.popen("jobs", "logs", "-f", stopped)
    sagemaker.stop_training_job(TrainingJobName=stopped)
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 2, err
    assert f"training job {stopped} Stopped" in err


def test_one_way_to_find_the_server(server, sagemaker, training_images, tmp_path):
    """--endpoint-url > FORKLIFT_URL > AWS_ENDPOINT_URL_SAGEMAKER > $FORKLIFT_HOME/server.json."""
    name = unique("found")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "true"))
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing answers there
    env = {k: v for k, v in server.env().items() if k not in ("FORKLIFT_URL", "AWS_ENDPOINT_URL_SAGEMAKER")}

    def show(*args: str, **variables: str):
        return server.forklift("jobs", "show", name, "-o", "json", *args, env={**env, **variables})

    assert show().returncode == 0  # server.json of this FORKLIFT_HOME
    assert show(AWS_ENDPOINT_URL_SAGEMAKER=nowhere).returncode != 0
    assert show(AWS_ENDPOINT_URL_SAGEMAKER=nowhere, FORKLIFT_URL=server.url).returncode == 0
    assert show("--endpoint-url", server.url, FORKLIFT_URL=nowhere).returncode == 0
    refused = show(FORKLIFT_URL=nowhere)
    assert refused.returncode == 1 and "cannot reach the forklift server at http://127.0.0.1:9" in refused.stderr
    assert "Traceback" not in refused.stderr

    elsewhere = tmp_path / "empty-home"
    alone = server.forklift("jobs", "list", env={**env, "FORKLIFT_HOME": str(elsewhere)})
    assert alone.returncode == 1
    assert f"no forklift server is running for FORKLIFT_HOME={elsewhere}" in alone.stderr
    assert "forklift server start" in alone.stderr


def test_clamping_is_said_in_the_status_message(server, sagemaker, training_images):
    name = unique("clamped")
    request = busybox_job(name, training_images.busybox, "true",
                          ResourceConfig={"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10})
    sagemaker.create_training_job(**request)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    training = [t for t in job["SecondaryStatusTransitions"] if t["Status"] == "Training"][0]["StatusMessage"]
    assert "ml.p3.2xlarge is larger than this machine; clamped:" in training
    if not any(p.startswith("nvidia") for p in os.listdir("/dev")):
        assert "1 GPU -> 0" in training


def test_unknown_instance_type_gets_did_you_mean_not_the_whole_enum(sagemaker, training_images):
    import botocore.exceptions
    import pytest

    request = job_request(unique("typo"), training_images.python,
                          ResourceConfig={"InstanceType": "ml.m5.larg", "InstanceCount": 1, "VolumeSizeInGB": 10})
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sagemaker.create_training_job(**request)
    message = info.value.response["Error"]["Message"]
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "did you mean ml.m5.large" in message and "`forklift instance-types --training` lists them" in message
    assert len(message) < 500
