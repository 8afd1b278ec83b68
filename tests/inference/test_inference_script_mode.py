"""Script mode at deploy: a Model whose container names its code in SAGEMAKER_SUBMIT_DIRECTORY. An
`s3://` archive (the SDK's sklearn and older frameworks) is staged by forklift into /opt/ml/code; a
path inside the model data (`/opt/ml/model/code`: the SDK repacked the code into model.tar.gz) is
served from the extracted model as it is. The image is a stand-in for the SageMaker inference toolkit
(fixtures.sagemaker_toolkit) that has no S3 access."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from inference_support import ROLE, VPC, create_config, function_arn, unique, wait_status

from fixtures.sagemaker_toolkit import INFERENCE_PY, build_toolkit_image, put_object, sourcedir_tar_gz
from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.kubernetes.endpoints import variant_objects
from forklift.control.scriptmode import endpoint_container
from forklift.kube.settings import KubeSettings
from forklift.storage import BucketAlreadyExists, EmbeddedBuckets

MODEL = {"weights": [2.0, 3.0], "bias": 1.0}


@pytest.fixture(scope="module")
def toolkit_image(tmp_path_factory, pki, basic_registry) -> str:
    return build_toolkit_image(tmp_path_factory, pki, basic_registry, "serve-toolkit")


def model_tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600  # private: the image's non-root user must still read it
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put_model_object(server, uri: str, data: bytes) -> str:
    """`data` at `uri` in the server's embedded bucket `models`, made if it is not there yet."""
    buckets = EmbeddedBuckets(server.home / "buckets")
    try:
        buckets.make_bucket("models")
    except BucketAlreadyExists:
        pass
    return put_object(buckets, uri, data, server.home / "scratch")


def create_script_model(sm, server, image: str, model_files: dict[str, str], submit: str) -> str:
    name = unique("script-model")
    url = put_model_object(server, f"s3://models/{name}/model.tar.gz", model_tar_gz(model_files))
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, VpcConfig=VPC, PrimaryContainer={
        "Image": image, "ModelDataUrl": url,
        "ImageConfig": {"RepositoryAccessMode": "Vpc", "RepositoryAuthConfig": {
            "RepositoryCredentialsProviderArn": function_arn("registry-creds")}},
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": submit,
                        "SAGEMAKER_REGION": "us-west-2", "SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}})
    return name


def test_invoke_answers_from_the_users_predict_code(server, sagemaker, runtime_client, toolkit_image):
    code = put_model_object(server, f"s3://models/{unique('code')}/sourcedir.tar.gz",
                            sourcedir_tar_gz({"inference.py": INFERENCE_PY}))
    staged = create_script_model(sagemaker, server, toolkit_image, {"model.json": json.dumps(MODEL)}, code)
    repacked = create_script_model(sagemaker, server, toolkit_image,
                                   {"model.json": json.dumps(MODEL), "code/inference.py": INFERENCE_PY},
                                   "/opt/ml/model/code")
    name = unique("script-endpoint")
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=create_config(
        sagemaker, [("Staged", staged, 1, 1.0), ("Repacked", repacked, 1, 1.0)]))
    endpoint = wait_status(sagemaker, name)
    assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")

    for variant, where in (("Staged", "/opt/ml/code/inference.py"), ("Repacked", "/opt/ml/model/code/inference.py")):
        response = runtime_client.invoke_endpoint(EndpointName=name, Body=json.dumps([[1, 1], [2, 0]]),
                                                  ContentType="application/json", TargetVariant=variant)
        assert json.loads(response["Body"].read()) == {"predictions": [6.0, 5.0], "from": "user inference.py",
                                                       "where": where}
    # DescribeModel answers what was sent; only the container was told where the code is
    environment = sagemaker.describe_model(ModelName=staged)["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == code
    sagemaker.delete_endpoint(EndpointName=name)


def test_a_missing_code_archive_fails_the_endpoint_naming_the_variable(server, sagemaker, toolkit_image):
    missing = f"s3://models/{unique('nothing')}/sourcedir.tar.gz"
    model = create_script_model(sagemaker, server, toolkit_image, {"model.json": json.dumps(MODEL)}, missing)
    name = unique("script-missing")
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=create_config(
        sagemaker, [("AllTraffic", model, 1, 1.0)]))
    endpoint = wait_status(sagemaker, name)
    assert endpoint["EndpointStatus"] == "Failed"
    assert (f"Variant AllTraffic: the code archive SAGEMAKER_SUBMIT_DIRECTORY names ({missing}) could not be "
            f"staged into /opt/ml/code: no such object: {missing}") in endpoint["FailureReason"]
    sagemaker.delete_endpoint(EndpointName=name)


def test_on_kubernetes_each_replica_mounts_the_staged_code_read_only(tmp_path):
    """The server stages the code onto the claim beside the model data; the Deployment's pods mount both."""
    settings = Settings(home=tmp_path)
    generation = tmp_path / "endpoints" / "ep" / "AllTraffic-g1"
    container = endpoint_container({"Image": "registry.example/model:1", "Environment": {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://models/src/sourcedir.tar.gz"}})
    prepared = inst.PreparedVariant("AllTraffic", "model-a", container, None, {}, generation / "model", None,
                                    {"ResolvedImage": f"registry.example/model@sha256:{'a' * 64}"},
                                    code_dir=generation / "code")
    made = variant_objects(settings, KubeSettings(namespace="ml", volume_claim="home"), "ep", prepared, 1, 1)
    (deployment,) = [obj for obj in made if obj["kind"] == "Deployment"]
    (pod_container,) = deployment["spec"]["template"]["spec"]["containers"]
    mounts = {m["mountPath"]: (m["subPath"], m.get("readOnly", False)) for m in pod_container["volumeMounts"]}
    assert mounts == {"/opt/ml/model": ("endpoints/ep/AllTraffic-g1/model", True),
                      "/opt/ml/code": ("endpoints/ep/AllTraffic-g1/code", True)}
    env = {e["name"]: e["value"] for e in pod_container["env"]}
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/code"
