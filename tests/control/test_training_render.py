"""`forklift k8s render --training-job`: the Kubernetes objects of a training job, as a real runc-backed
`forklift serve` renders them with its config.toml's `[kubernetes]` settings, its registry credentials
coming from a provider function and never shown.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from training_support import busybox_job, job_request, unique, wait_for

from fixtures import secretscan
from fixtures.serve import ServeProcess, remove_containers
from forklift.config import load_settings
from forklift.control.errors import RenderFailed
from forklift.control.kubernetes.review import training_job_objects
from forklift.control.models import TrainingJobRow
from forklift.devregistry import install_ca
from forklift.kube.names import TRAINING_JOB
from forklift.kube.settings import KubeSettings, kube_settings

NAMESPACE, CLAIM, SUBPATH = "ml-jobs", "shared-home", "forklift"
K8S_VERSION = kubernetes_validate.latest_version()


@pytest.fixture(scope="module")
def render_server(tmp_path_factory, pki, basic_registry, training_images):
    home = tmp_path_factory.mktemp("render-serve-home")
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text(f'stop_grace_seconds = 5\n[kubernetes]\nnamespace = "{NAMESPACE}"\n'
                                      f'volume_claim = "{CLAIM}"\nvolume_subpath = "{SUBPATH}"\n')
    running = ServeProcess(home)
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
    running.start()
    yield running
    running.stop()
    remove_containers(home)


def rendered(server: ServeProcess, name: str) -> tuple[str, list[dict]]:
    result = server.forklift("k8s", "render", "--training-job", name)
    assert result.returncode == 0, result.stderr
    return result.stdout, [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def assert_no_credentials(text: str, registry) -> None:
    for spelling in secretscan.encodings(registry.password, registry.username):
        assert spelling not in text.encode()


def test_a_runc_server_renders_a_jobs_objects_with_its_kubernetes_settings_and_no_credentials(
        render_server, training_images, basic_registry):
    sagemaker = render_server.client("sagemaker")
    name = unique("render-ran")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "exit 0"))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    text, docs = rendered(render_server, name)
    assert_no_credentials(text, basic_registry)
    assert [d["kind"] for d in docs] == ["Secret", "NetworkPolicy", "Job"]  # the request has a VpcConfig
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == NAMESPACE and doc["metadata"]["labels"][TRAINING_JOB] == name
    secret, _, made = docs
    assert secret["data"] == {".dockerconfigjson": "<redacted>"}
    pod = made["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]
    (container,) = pod["containers"]
    # the digest the job ran, as DescribeTrainingJob's ResolvedTrainingImage reports it
    assert container["image"].startswith(training_images.busybox.rsplit(":", 1)[0] + "@sha256:")
    assert container["image"] in render_server.forklift("jobs", "show", name).stdout
    assert pod["volumes"] == [{"name": "forklift-home", "persistentVolumeClaim": {"claimName": CLAIM}}]
    mounts = {m["mountPath"]: (m["subPath"], m.get("readOnly", False)) for m in container["volumeMounts"]}
    assert mounts == {"/opt/ml/input": (f"{SUBPATH}/jobs/{name}/input", False),
                      "/opt/ml/input/config": (f"{SUBPATH}/jobs/{name}/input/config", True),
                      "/opt/ml/model": (f"{SUBPATH}/jobs/{name}/model", False),
                      "/opt/ml/output": (f"{SUBPATH}/jobs/{name}/output", False)}
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}  # ml.m4.xlarge's own figures
    assert rendered(render_server, name)[1] == docs  # the attempt that ran: the same names every time


def test_a_job_that_has_not_resolved_its_image_is_resolved_through_its_provider_function(
        render_server, training_images, basic_registry):
    """In-process on the server's own home (its provider function, its CA): a job that never ran."""
    settings = load_settings(render_server.home)
    request = job_request("never-ran", training_images.python)
    del request["VpcConfig"]
    request["InputDataConfig"] = [{"ChannelName": "train", "InputMode": "FastFile", "DataSource": {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://your-training-data-bucket/train"}}}]
    row = TrainingJobRow(name="never-ran", arn="arn:aws:sagemaker:us-east-1:000000000000:training-job/never-ran",
                         request=request, resolved_image=None, container_name=None)
    docs = training_job_objects(settings, kube_settings(settings), row)
    assert_no_credentials(repr(docs), basic_registry)
    assert [d["kind"] for d in docs] == ["Secret", "Job"]
    (container,) = docs[-1]["spec"]["template"]["spec"]["containers"]
    repository = training_images.python.rsplit(":", 1)[0]
    assert container["image"] == f"{repository}@{training_images.python_digest}"
    fastfile = {m["mountPath"]: m for m in container["volumeMounts"]}["/opt/ml/input/data/train"]
    assert fastfile == {"name": "forklift-home", "mountPath": "/opt/ml/input/data/train",
                        "subPath": f"{SUBPATH}/jobs/never-ran/input/data/train", "readOnly": True}
    assert not (render_server.home / "jobs" / "never-ran").exists()  # nothing was staged

    with pytest.raises(RenderFailed, match=r"never-ran cannot be rendered: .*set its name as volume_claim"):
        training_job_objects(settings, KubeSettings(), row)
    request["InputDataConfig"][0]["InputMode"] = "Pipe"
    with pytest.raises(RenderFailed, match="Pipe input mode is not available on forklift's Kubernetes runtime"):
        training_job_objects(settings, kube_settings(settings), row)


def test_an_unknown_job_is_a_one_line_error_naming_it(render_server):
    missing = render_server.forklift("k8s", "render", "--training-job", "no-such-job")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == "Error: ResourceNotFound: Training job no-such-job does not exist on this server."
    both = render_server.forklift("k8s", "render", "--training-job", "a", "--endpoint", "b")
    assert both.returncode == 2 and "name exactly one of --training-job NAME and --endpoint NAME" in both.stderr


def test_a_script_mode_job_mounts_its_staged_code_from_the_claim(render_server, training_images):
    """Script mode on Kubernetes: the server stages the code into the job's directory on the claim, as it
    stages channels, and the pod mounts it at /opt/ml/code, writable as the toolkit expects."""
    settings = load_settings(render_server.home)
    request = job_request("script-mode", training_images.python, HyperParameters={
        "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://code/src/sourcedir.tar.gz"'})
    row = TrainingJobRow(name="script-mode", arn="arn:aws:sagemaker:us-east-1:000000000000:training-job/script-mode",
                         request=request, resolved_image=None, container_name=None)
    (container,) = training_job_objects(settings, kube_settings(settings), row)[-1]["spec"]["template"]["spec"][
        "containers"]
    code = {m["mountPath"]: m for m in container["volumeMounts"]}["/opt/ml/code"]
    assert code == {"name": "forklift-home", "mountPath": "/opt/ml/code",
                    "subPath": f"{SUBPATH}/jobs/script-mode/code"}
