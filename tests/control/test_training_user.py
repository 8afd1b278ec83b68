"""Training images with a `User`: the job runs as that user (numeric or named, from the image's own
/etc/passwd), still writes /opt/ml/model and /opt/ml/output, and its model is collected; a user the
image lacks fails the job with a clear FailureReason."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass

import pytest
from training_support import busybox_job, unique, wait_for

from fixtures.imagetools import build_and_push, trusting_store
from forklift.images.build import BuildOptions

SCRIPT = ('id -u > /opt/ml/model/uid; id -g >> /opt/ml/model/uid; echo "$HOME" > /opt/ml/model/home; '
          'echo rows=1 > /opt/ml/output/data/metrics.txt; cat /opt/ml/input/config/hyperparameters.json; '
          'touch /opt/ml/input/config/x 2>/dev/null && echo CONFIG-WRITABLE; true')


@dataclass
class UserImages:
    named: str  # User "app" (1000:1000 in the image's /etc/passwd)
    numeric: str  # User "1000:1000"
    unknown: str  # User "nobody", not in the image's /etc/passwd


@pytest.fixture(scope="module")
def user_images(tmp_path_factory, pki, basic_registry, busybox_rootfs) -> UserImages:
    store = trusting_store(tmp_path_factory, pki, basic_registry, "user-image-home")
    etc = tmp_path_factory.mktemp("user-etc")
    (etc / "etc").mkdir()
    (etc / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
    (etc / "etc/group").write_text("root:x:0:\napp:x:1000:\n")
    refs = {}
    for kind, user in (("named", "app"), ("numeric", "1000:1000"), ("unknown", "nobody")):
        ref = f"{basic_registry.address}/docker-local/user-train-{kind}:1"
        build_and_push(store, basic_registry, [busybox_rootfs, etc], ref, BuildOptions(cmd=["/bin/sh"], user=user))
        refs[kind] = ref
    return UserImages(**refs)


def model_files(server, name: str) -> dict[str, str]:
    archive = server.home / "buckets/your-output-data-bucket/model-folder" / name / "output/model.tar.gz"
    with tarfile.open(archive) as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read().decode() for m in tar if m.isfile()}


@pytest.mark.parametrize("kind", ["named", "numeric"])
def test_a_non_root_image_user_trains_and_its_model_is_collected(server, sagemaker, user_images, kind):
    name = unique("user")
    sagemaker.create_training_job(**busybox_job(name, getattr(user_images, kind), SCRIPT,
                                                HyperParameters={"epochs": "2"}))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(server, name)
    assert files["uid"] == "1000\n1000\n"
    assert files["home"] == "/home/app\n"
    output = server.home / "buckets/your-output-data-bucket/model-folder" / name / "output/output.tar.gz"
    with tarfile.open(output) as tar:
        assert tar.extractfile("metrics.txt").read() == b"rows=1\n"
    logs = server.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                       logStreamNamePrefix=f"{name}/")["logStreams"][0]["logStreamName"]
    messages = [e["message"] for e in logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                                          logStreamName=stream, startFromHead=True)["events"]]
    assert any('"epochs": "2"' in m for m in messages), messages  # /opt/ml/input is readable
    assert "CONFIG-WRITABLE" not in messages


def test_a_user_the_image_does_not_have_fails_the_job_clearly(sagemaker, user_images):
    name = unique("nouser")
    sagemaker.create_training_job(**busybox_job(name, user_images.unknown, "true"))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("ClientError: the training image's User cannot run the job"), reason
    assert "'nobody' is not in the image's /etc/passwd" in reason and "Traceback" not in reason
