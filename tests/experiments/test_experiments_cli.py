"""`forklift experiments …` end to end: the real command, a real server, the private registry and runc."""

from __future__ import annotations

import json
import time

import pytest
from experiments_support import JSON_KEY, JSON_KEY_USER, PASSWORD, USER, files_containing

from fixtures.postgres import query, stored_bytes

pytestmark = pytest.mark.usefixtures("exp_server")

TRAIN = r'''
echo "pwd=$(pwd)"
cat hello.txt
echo "hp=$(cat /opt/ml/input/config/hyperparameters.json | tr -d ' \n')"
echo "env=$GREETING"
echo done > /opt/ml/model/result.txt
'''


def _workspace(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "hello.txt").write_text("hello from the workspace\n")
    (workspace / "train.sh").write_text(TRAIN)
    return workspace


def _secret_rows(home) -> list[tuple]:
    return query(home, "select s.id, o.owner from secrets s join secret_owners o on o.secret_id = s.id "
                       "where o.owner like 'experiment:%'")


def test_experiments_run_private_image_with_workspace(exp_server, exp_images, tmp_path):
    result = exp_server.forklift(
        "experiments", "run", "--name", "ws-run", "--container", exp_images.busybox,
        "--registryUsername", USER, "--registryPassword", PASSWORD, "--workspace", str(_workspace(tmp_path)),
        "--command", "sh train.sh", "--machineType", "C4", "--env", "GREETING=hi", "--hyperparameter", "lr=0.5")
    assert result.returncode == 0, result.stderr
    assert "pwd=/opt/ml/code" in result.stdout
    assert "hello from the workspace" in result.stdout
    assert 'hp={"lr":"0.5"}' in result.stdout and "env=hi" in result.stdout
    assert "Completed" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    # The experiment is a training job underneath, visible to boto3.
    job = exp_server.client("sagemaker").describe_training_job(TrainingJobName="ws-run")
    assert job["TrainingJobStatus"] == "Completed"
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    provider = job["AlgorithmSpecification"]["TrainingImageConfig"]["TrainingRepositoryAuthConfig"]
    assert ":function:forklift-secret-" in provider["TrainingRepositoryCredentialsProviderArn"]
    assert PASSWORD not in json.dumps(job, default=str)
    shown = exp_server.forklift("experiments", "show", "ws-run")
    assert shown.returncode == 0, shown.stderr
    assert "Completed" in shown.stdout and "C4 (ml.m5.large)" in shown.stdout and "stored, encrypted" in shown.stdout
    logs = exp_server.forklift("experiments", "logs", "ws-run")
    assert "hello from the workspace" in logs.stdout
    listed = exp_server.forklift("experiments", "list")
    assert "ws-run" in listed.stdout and "Completed" in listed.stdout


def test_experiments_wrong_password_fails_clearly(exp_server, exp_images):
    wrong = "not-the-password-0451"
    result = exp_server.forklift("experiments", "run", "--name", "wrong-pw", "--container", exp_images.busybox,
                                 "--registryUsername", USER, "--registryPassword", wrong, "--command", "true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wrong-pw Failed" in result.stderr
    assert "authentication" in result.stderr.lower() and exp_images.registry in result.stderr
    assert wrong not in result.stderr + result.stdout


def test_experiments_clone_reuses_credentials_until_the_last_delete(exp_server, exp_images):
    first = exp_server.forklift("experiments", "run", "--name", "orig", "--container", exp_images.busybox,
                                "--registry-username", USER, "--registry-password-stdin", "--command", "echo original",
                                input=PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    assert "original" in first.stdout
    clone = exp_server.forklift("experiments", "clone", "orig", "--name", "orig-copy", "--start", "--follow")
    assert clone.returncode == 0, clone.stderr
    assert "original" in clone.stdout
    assert exp_server.client("sagemaker").describe_training_job(TrainingJobName="orig-copy")["TrainingJobStatus"] \
        == "Completed"
    owners = [owner for _, owner in _secret_rows(exp_server.home)]
    assert {"experiment:orig", "experiment:orig-copy"} <= set(owners)
    # Still not in clear text anywhere: database (and its WAL), logs, job directories, buckets.
    assert files_containing(exp_server.home, [PASSWORD]) == []
    assert PASSWORD.encode() not in stored_bytes(exp_server.home)
    shown = exp_server.forklift("experiments", "show", "orig-copy")
    assert "orig" in shown.stdout and PASSWORD not in shown.stdout

    deleted = exp_server.forklift("experiments", "delete", "orig")
    assert deleted.returncode == 0, deleted.stderr
    assert "purged" not in deleted.stderr  # the clone still holds them
    again = exp_server.forklift("experiments", "start", "orig-copy", "--follow")  # a second run of the clone
    assert again.returncode == 0, again.stderr
    assert "orig-copy-2" in again.stderr
    deleted = exp_server.forklift("experiments", "delete", "orig-copy")
    assert deleted.returncode == 0 and "purged" in deleted.stderr
    assert not [row for row in _secret_rows(exp_server.home) if row[1] in ("experiment:orig", "experiment:orig-copy")]
    assert files_containing(exp_server.home, [PASSWORD]) == []
    assert PASSWORD.encode() not in stored_bytes(exp_server.home)
    gone = exp_server.forklift("experiments", "show", "orig")
    assert gone.returncode != 0 and "no experiment named 'orig'" in gone.stderr


def test_experiments_gcr_style_json_key_from_stdin(exp_server, exp_images):
    result = exp_server.forklift("experiments", "run", "--name", "json-key", "--container", exp_images.busybox,
                                 "--registryUsername", JSON_KEY_USER, "--registry-password-stdin",
                                 "--command", "echo pulled with a json key", input=JSON_KEY + "\n")
    assert result.returncode == 0, result.stderr
    assert "pulled with a json key" in result.stdout
    result = exp_server.forklift("experiments", "run", "--name", "json-key-arg", "--container", exp_images.busybox,
                                 "--registryUsername", JSON_KEY_USER, "--registryPassword", JSON_KEY,
                                 "--command", "echo as an argument")
    assert result.returncode == 0, result.stderr
    assert files_containing(exp_server.home, [JSON_KEY]) == []
    assert JSON_KEY.encode() not in stored_bytes(exp_server.home)


def test_experiments_stop_exits_2(exp_server, exp_images):
    created = exp_server.forklift("experiments", "create", "--name", "sleeper", "--container", exp_images.busybox,
                                  "--registryUsername", USER, "--registryPassword", PASSWORD,
                                  "--command", "echo started; sleep 60")
    assert created.returncode == 0 and created.stdout.strip() == "sleeper", created.stderr
    assert "Created" in exp_server.forklift("experiments", "list").stdout
    follower = exp_server.popen("experiments", "start", "sleeper", "--follow")
    try:
        deadline = time.monotonic() + 60
        while "started" not in exp_server.forklift("experiments", "logs", "sleeper").stdout:
            assert time.monotonic() < deadline, "the experiment never printed its first line"
            time.sleep(0.3)
        stopped = exp_server.forklift("experiments", "stop", "sleeper")
        assert stopped.returncode == 0, stopped.stderr
        _, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 2, err
    assert "sleeper Stopped" in err


def test_experiments_machine_types_and_cuda_warning(exp_server, exp_images):
    unknown = exp_server.forklift("experiments", "create", "--container", exp_images.busybox, "--machineType", "Z9")
    assert (unknown.returncode != 0 and "P4000" in unknown.stderr
            and "forklift instance-types --training" in unknown.stderr)
    hosting_only = exp_server.forklift("experiments", "create", "--container", exp_images.busybox,
                                       "--machineType", "ml.t2.medium")
    assert hosting_only.returncode != 0 and "not a training instance type" in hosting_only.stderr
    plain = exp_server.forklift("experiments", "create", "--name", "gpu-plain", "--container", exp_images.busybox,
                                "--machineType", "P4000", "--registryUsername", USER, "--registryPassword", PASSWORD)
    assert plain.returncode == 0, plain.stderr
    assert "does not look CUDA-capable" in plain.stderr
    # This machine has no GPU: the type is clamped, and the CLI says so before anything runs.
    assert "note: ml.g4dn.xlarge is larger than this machine; clamped:" in plain.stderr and "1 GPU -> 0" in plain.stderr
    cuda = exp_server.forklift("experiments", "create", "--name", "gpu-cuda", "--container", exp_images.cuda,
                               "--machineType", "V100", "--registryUsername", USER, "--registryPassword", PASSWORD)
    assert cuda.returncode == 0, cuda.stderr
    assert "CUDA" not in cuda.stderr
    for name in ("gpu-plain", "gpu-cuda"):
        assert exp_server.forklift("experiments", "delete", name).returncode == 0


def test_experiments_inputs_and_max_runtime(exp_server, exp_images):
    data = exp_server.home / "buckets" / "exp-data" / "train"
    data.mkdir(parents=True, exist_ok=True)
    (data / "rows.csv").write_text("1,2\n3,4\n")
    result = exp_server.forklift("experiments", "run", "--name", "timed", "--container", exp_images.busybox,
                                 "--registryUsername", USER, "--registryPassword", PASSWORD,
                                 "--input", "training=s3://exp-data/train/", "--max-runtime", "1",
                                 "--command", "cat /opt/ml/input/data/training/rows.csv; sleep 60")
    assert "3,4" in result.stdout
    assert result.returncode == 2, result.stderr  # MaxRuntimeInSeconds stops the run
    job = exp_server.client("sagemaker").describe_training_job(TrainingJobName="timed")
    assert job["TrainingJobStatus"] == "Stopped" and job["StoppingCondition"]["MaxRuntimeInSeconds"] == 1


def test_experiments_clone_overrides_hyperparameters_and_scripts_well(exp_server, exp_images):
    base = exp_server.forklift("experiments", "run", "--name", "hp-base", "--container", exp_images.busybox,
                               "--registryUsername", USER, "--registryPassword", PASSWORD, "--hyperparameter", "lr=0.5",
                               "--hyperparameter", "epochs=3",
                               "--command", "echo hp=$(tr -d ' \\n' < /opt/ml/input/config/hyperparameters.json)")
    assert base.returncode == 0, base.stderr
    clone = exp_server.forklift("experiments", "clone", "hp-base", "--name", "hp-clone", "--hp", "lr=0.1",
                                "--start", "--follow")
    assert clone.returncode == 0, clone.stderr
    assert 'hp={"lr":"0.1","epochs":"3"}' in clone.stdout  # overridden in place, the rest kept
    job = exp_server.client("sagemaker").describe_training_job(TrainingJobName="hp-clone")
    assert job["HyperParameters"] == {"epochs": "3", "lr": "0.1"}
    malformed = exp_server.forklift("experiments", "clone", "hp-base", "--hp", "nokey")
    assert malformed.returncode == 1 and "--hyperparameter 'nokey' is not KEY=VALUE" in malformed.stderr

    followed = exp_server.forklift("experiments", "logs", "hp-clone", "--follow")
    assert followed.returncode == 0 and followed.stderr.strip().endswith("experiment hp-clone Completed")

    shown = json.loads(exp_server.forklift("experiments", "show", "hp-clone", "-o", "json").stdout)
    assert shown["ClonedFrom"] == "hp-base" and shown["HyperParameters"] == {"epochs": "3", "lr": "0.1"}
    assert shown["TrainingJob"]["TrainingJobStatus"] == "Completed" and PASSWORD not in json.dumps(shown)
    listed = json.loads(exp_server.forklift("experiments", "ls", "-o", "json").stdout)["Experiments"]
    assert {"hp-base", "hp-clone"} <= {e["Name"] for e in listed}
