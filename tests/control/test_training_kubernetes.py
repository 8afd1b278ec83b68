"""Training jobs on the Kubernetes runtime: a real `forklift serve --runtime kubernetes`, driven by
boto3, against a Kubernetes API STAND-IN (kmock's emulator, with a kubelet stand-in that plays the
pods; see fixtures.kubeemulator for what that does and does not prove) and a real TLS registry with
basic auth, whose credentials come from a provider function.
"""

from __future__ import annotations

import base64
import json
import tarfile
import threading
import time

import pytest
import yaml
from training_support import busybox_job, kube_training_server, unique, wait_for

from fixtures import secretscan
from fixtures.kubeemulator import CLAIM, Emulator, Kubelet, PodOutcome
from forklift.kube.names import TRAINING_JOB
from forklift.kube.pullsecrets import redacted


@pytest.fixture(scope="module")
def kube_server(tmp_path_factory, pki, basic_registry, training_images, emulator):
    running = kube_training_server(tmp_path_factory.mktemp("kube-serve-home"), pki, basic_registry, emulator).start()
    kubelet = Kubelet(emulator, running.home).start()
    running.kubelet = kubelet  # type: ignore[attr-defined]
    yield running
    kubelet.stop()
    running.stop()


def of_job(objs: list[dict], job: str) -> list[dict]:
    return [o for o in objs if o["metadata"].get("labels", {}).get(TRAINING_JOB) == job]


def created(emulator: Emulator, plural: str, job: str) -> list[dict]:
    """The job's objects as forklift created them."""
    return of_job(emulator.created(plural), job)


def job_objects(emulator: Emulator, plural: str, job: str) -> list[dict]:
    """The job's objects still stored."""
    return of_job(emulator.objects(plural), job)


def test_a_job_runs_as_a_kubernetes_job_pinned_by_digest_and_its_model_is_uploaded(
        kube_server, emulator, training_images, basic_registry):
    kube_server.kubelet.outcome = lambda job: PodOutcome(log="epoch 1\nepoch 2\n", files={
        "/opt/ml/model/model.json": '{"weights": [1, 2]}', "/opt/ml/output/data/metrics.txt": "rows=3\n"})
    sagemaker = kube_server.client("sagemaker")
    name = unique("kube-ok")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "exit 0"))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    (made,) = created(emulator, "jobs", name)
    spec = made["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    # the cluster runs exactly the digest DescribeTrainingJob reports
    shown = kube_server.forklift("jobs", "show", name)
    assert shown.returncode == 0 and container["image"] in shown.stdout, shown.stdout
    assert container["image"].startswith(training_images.busybox.rsplit(":", 1)[0] + "@sha256:")
    assert pod["restartPolicy"] == "Never" and spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 1800
    assert container["command"] == ["/bin/sh", "-c", "exit 0"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/opt/ml/input/config"]["readOnly"] is True
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == CLAIM
    # the pull Secret: the provider function's credentials, referenced by the pod, never in its spec
    (secret_ref,) = pod["imagePullSecrets"]
    assert basic_registry.password not in json.dumps(made)
    (secret,) = [s for s in created(emulator, "secrets", name) if s["metadata"]["name"] == secret_ref["name"]]
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    auth = config["auths"][basic_registry.address]["auth"]
    assert base64.b64decode(auth).decode() == f"{basic_registry.username}:{basic_registry.password}"

    # the model the "container" wrote on the shared volume, packed and uploaded as on runc
    model = kube_server.home / "buckets" / "your-output-data-bucket" / "model-folder" / name / "output" / "model.tar.gz"
    with tarfile.open(model) as archive:
        assert json.load(archive.extractfile("model.json")) == {"weights": [1, 2]}
    # its log, as CloudWatch Logs
    logs = kube_server.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                       logStreamNamePrefix=name)["logStreams"][0]["logStreamName"]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)["events"]
    assert [e["message"] for e in events] == ["epoch 1", "epoch 2"]
    # every object is gone with the job
    assert job_objects(emulator, "jobs", name) == [] and job_objects(emulator, "secrets", name) == []
    assert job_objects(emulator, "networkpolicies", name) == []


@pytest.mark.parametrize(("outcome", "status", "reason"), [
    (PodOutcome(exit_code=3, reason="Error", files={"/opt/ml/output/failure": "ValueError: bad data"}),
     "Failed", "ValueError: bad data"),
    (PodOutcome(exit_code=2, reason="Error"), "Failed", "AlgorithmError: the training container exited with code 2"),
    (PodOutcome(exit_code=137, reason="OOMKilled"), "Failed", "OutOfMemoryError"),
    (PodOutcome(waiting=("ErrImagePull", "failed to pull: 401 Unauthorized")), "Failed",
     "ClientError: the cluster could not start the training image"),
    (PodOutcome(deadline=True), "Stopped", None),
], ids=["failure-file", "exit-code", "oom", "image-pull", "deadline"])
def test_how_the_pod_ended_becomes_the_jobs_status(kube_server, emulator, training_images, outcome, status, reason):
    kube_server.kubelet.outcome = lambda job: outcome
    sagemaker = kube_server.client("sagemaker")
    name = unique("kube-end")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "exit 0"))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == status, job.get("FailureReason")
    if reason:
        assert job["FailureReason"].startswith(reason) or reason in job["FailureReason"], job["FailureReason"]
    if outcome.waiting:
        assert outcome.waiting[1] in job["FailureReason"]
    if outcome.deadline:
        assert job["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert job_objects(emulator, "jobs", name) == []


def test_stop_training_job_deletes_the_job_and_its_secret(kube_server, emulator, training_images):
    hold = threading.Event()
    kube_server.kubelet.outcome = lambda job: PodOutcome(hold=hold)
    sagemaker = kube_server.client("sagemaker")
    name = unique("kube-stop")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "sleep 600"))
    wait_for(sagemaker, name, until=("Training",))
    assert job_objects(emulator, "jobs", name) and job_objects(emulator, "secrets", name)
    sagemaker.stop_training_job(TrainingJobName=name)
    job = wait_for(sagemaker, name, until=("Stopped", "Failed", "Completed"))
    hold.set()
    assert job["TrainingJobStatus"] == "Stopped"
    assert job_objects(emulator, "jobs", name) == [] and job_objects(emulator, "secrets", name) == []


def test_a_stop_while_the_provider_function_runs_creates_nothing_in_the_cluster(kube_server, emulator,
                                                                               training_images, tmp_path):
    started = tmp_path / "provider-started"
    handler = tmp_path / "slow_provider.py"
    handler.write_text("import time\n"
                       "def handler(event, context):\n"
                       f"    open({str(started)!r}, 'w').write('running')\n"
                       "    time.sleep(300)\n"
                       "    return {'Credentials': {'Username': 'late', 'Password': 'too-late'}}\n")
    provider = unique("kube-slow-provider")
    registered = kube_server.forklift("functions", "register", provider, "--handler", str(handler), "--timeout", "600")
    assert registered.returncode == 0, registered.stderr
    sagemaker = kube_server.client("sagemaker")
    name = unique("kube-stop-early")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "true", provider=provider))
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the provider function never ran"
        time.sleep(0.1)
    sagemaker.stop_training_job(TrainingJobName=name)
    job = wait_for(sagemaker, name, until=("Stopped", "Failed", "Completed"), timeout=60)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped", job.get("FailureReason")
    assert created(emulator, "jobs", name) == [] and created(emulator, "secrets", name) == []


def test_a_restarted_server_re_adopts_its_running_job(kube_server, emulator, training_images):
    hold = threading.Event()
    kube_server.kubelet.outcome = lambda job: PodOutcome(hold=hold, files={"/opt/ml/model/m.txt": "adopted"})
    sagemaker = kube_server.client("sagemaker")
    name = unique("kube-adopt")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "sleep 600"))
    wait_for(sagemaker, name, until=("Training",))
    kube_server.stop()
    kube_server.start()
    hold.set()
    job = wait_for(kube_server.client("sagemaker"), name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def test_k8s_render_prints_the_objects_the_server_created_with_the_secret_redacted(
        kube_server, emulator, training_images, basic_registry):
    kube_server.kubelet.outcome = lambda job: PodOutcome()
    sagemaker = kube_server.client("sagemaker")
    name = unique("kube-render")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "exit 0"))
    assert wait_for(sagemaker, name)["TrainingJobStatus"] == "Completed"

    result = kube_server.forklift("k8s", "render", "--training-job", name)
    assert result.returncode == 0, result.stderr
    for spelling in secretscan.encodings(basic_registry.password, basic_registry.username):
        assert spelling not in result.stdout.encode()
    shown = list(yaml.safe_load_all(result.stdout))
    made = {o["kind"]: o for plural in ("secrets", "networkpolicies", "jobs") for o in created(emulator, plural, name)}
    assert [o["kind"] for o in shown] == ["Secret", "NetworkPolicy", "Job"] and set(made) == {o["kind"] for o in shown}
    for obj in shown:  # exactly what the server sent the API server, but the Secret's data
        assert obj == (redacted(made[obj["kind"]]) if obj["kind"] == "Secret" else made[obj["kind"]])
    assert shown[0]["data"] == {".dockerconfigjson": "<redacted>"}
