"""The SageMaker Python SDK v2's own script mode against forklift: `sagemaker.sklearn.SKLearn(entry_point=
"train.py", source_dir=..., image_uri=...)`.fit() packs and uploads sourcedir.tar.gz itself and names it
in `sagemaker_submit_directory`; forklift stages it and the user's train.py runs (the image is the
stand-in for the SageMaker training toolkit, fixtures.sagemaker_toolkit); likewise `SKLearnModel(entry_point=
"inference.py", source_dir=...)`.deploy(), which names its upload in SAGEMAKER_SUBMIT_DIRECTORY (its
container given the ImageConfig a private registry needs, which SKLearnModel drops).

The SDK uploads through an S3 API, which the embedded store does not serve yet, so S3 here is moto's
server (fixtures.motoserver), forklift's `s3_endpoint_url` pointing at it and AWS_ENDPOINT_URL_S3 the
SDK's. The SDK runs in its own environment (/work/main/.venv/sagemaker-sdk-v2, as tests/test_readme.py
runs it), with its telemetry off in a HOME of the test's own."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from training_support import function_arn, unique

from fixtures.motoserver import MotoServer
from fixtures.sagemaker_toolkit import HELPER_PY, INFERENCE_PY, TRAIN_PY, build_toolkit_image
from fixtures.serve import CREDENTIALS, REGION, ROLE, VPC, ServeProcess, serving

SDK_V2_PYTHON = Path(__file__).resolve().parents[2] / ".venv" / "sagemaker-sdk-v2" / "bin" / "python"
if not SDK_V2_PYTHON.exists():  # a worktree has no venv of its own: the main checkout's
    SDK_V2_PYTHON = Path("/work/main/.venv/sagemaker-sdk-v2/bin/python")
BUCKET = "sdk-bucket"
TELEMETRY_OFF = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"


@pytest.fixture(scope="module")
def moto(tmp_path_factory) -> Iterator[str]:
    with MotoServer(tmp_path_factory.mktemp("sdk-moto") / "server.log") as server:
        yield server.url


@pytest.fixture(scope="module")
def s3(moto: str):
    client = boto3.client("s3", endpoint_url=moto, region_name=REGION, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, moto, s3) -> Iterator[ServeProcess]:
    config = f'stop_grace_seconds = 5\ns3_endpoint_url = "{moto}"\n'
    yield from serving(tmp_path_factory.mktemp("sdk-script-mode-home"), pki, basic_registry, config)


def sdk_env(server: ServeProcess, moto: str, tmp_path: Path) -> dict[str, str]:
    """The SDK's environment: forklift for SageMaker and Logs, moto for S3, telemetry off in a HOME of its own."""
    home = tmp_path / "home"
    (home / ".config" / "sagemaker").mkdir(parents=True)
    (home / ".config" / "sagemaker" / "config.yaml").write_text(TELEMETRY_OFF)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORKLIFT_", "AWS_", "SAGEMAKER_"))}
    env.update(HOME=str(home), SAGEMAKER_SUPPRESS_V2_WARNING="1", AWS_DEFAULT_REGION=REGION,
               AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"], AWS_ENDPOINT_URL_SAGEMAKER=server.url,
               AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=server.url, AWS_ENDPOINT_URL_LOGS=server.url,
               AWS_ENDPOINT_URL_S3=moto, AWS_EC2_METADATA_DISABLED="true")
    return env


def run_sdk(script: str, args: dict, env: dict[str, str]) -> dict:
    """Run `script` with the SDK v2's Python; what it printed last, as JSON."""
    result = subprocess.run([str(SDK_V2_PYTHON), "-c", script, json.dumps(args)], env=env, capture_output=True,
                            text=True, timeout=400, check=False)
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


SDK_SCRIPT = textwrap.dedent('''
    import json, sys
    import sagemaker
    from sagemaker.sklearn import SKLearn
    args = json.loads(sys.argv[1])
    session = sagemaker.Session(default_bucket=args["bucket"])
    estimator = SKLearn(
        entry_point="train.py", source_dir=args["source_dir"], image_uri=args["image"], framework_version="1.2-1",
        role=args["role"], instance_count=1, instance_type="ml.m5.large", base_job_name=args["base"],
        output_path=f"s3://{args['bucket']}/output", code_location=f"s3://{args['bucket']}/code",
        hyperparameters={"epochs": 4, "greeting": "from the sdk"},
        training_repository_access_mode="Vpc", training_repository_credentials_provider_arn=args["provider"],
        subnets=args["vpc"]["Subnets"], security_group_ids=args["vpc"]["SecurityGroupIds"], sagemaker_session=session)
    estimator.fit(wait=False)
    name = estimator.latest_training_job.name
    # fit(wait=True) polls every 30 s; a waiter with a short delay returns as soon as the job ends
    session.sagemaker_client.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    print(json.dumps({"job": name, "model": estimator.model_data}))
''')


def test_the_sdks_sklearn_estimator_runs_the_users_entry_point(server, moto, s3, basic_registry, pki,
                                                               tmp_path_factory, tmp_path):
    if not SDK_V2_PYTHON.exists():
        pytest.fail(f"{SDK_V2_PYTHON} is missing: `make test` installs it (WITH_SDK_V2=1 scripts/setup.sh)")
    image = build_toolkit_image(tmp_path_factory, pki, basic_registry, "sdk-toolkit")
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN_PY)
    (source / "helper.py").write_text(HELPER_PY)
    base = unique("sdk-sklearn")
    args = {"bucket": BUCKET, "source_dir": str(source), "image": image, "role": ROLE, "base": base,
            "provider": function_arn("registry-creds"), "vpc": VPC}
    ran = run_sdk(SDK_SCRIPT, args, sdk_env(server, moto, tmp_path))

    job = server.client("sagemaker").describe_training_job(TrainingJobName=ran["job"])
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    submitted = f"s3://{BUCKET}/code/{ran['job']}/source/sourcedir.tar.gz"
    assert job["HyperParameters"]["sagemaker_submit_directory"] == json.dumps(submitted)
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert ran["model"] == f"s3://{BUCKET}/output/{ran['job']}/output/model.tar.gz"
    body = s3.get_object(Bucket=BUCKET, Key=f"output/{ran['job']}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model == {"epochs": 4, "greeting": "from the sdk", "rows": 0, "uid": 1000, "described": "saw 0 rows"}


SDK_DEPLOY_SCRIPT = textwrap.dedent('''
    import json, sys
    import sagemaker
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer
    from sagemaker.sklearn import SKLearnModel
    args = json.loads(sys.argv[1])
    session = sagemaker.Session(default_bucket=args["bucket"])

    class PrivateRegistrySKLearnModel(SKLearnModel):
        """SKLearnModel leaves image_config out of its container (SDK v2): a private registry's image needs it."""

        def prepare_container_def(self, *args, **kwargs):
            return {**super().prepare_container_def(*args, **kwargs), "ImageConfig": self.image_config}

    model = PrivateRegistrySKLearnModel(
        model_data=args["model_data"], entry_point="inference.py", source_dir=args["source_dir"],
        image_uri=args["image"], framework_version="1.2-1", role=args["role"], vpc_config=args["vpc"],
        code_location=f"s3://{args['bucket']}/deploy-code", sagemaker_session=session,
        image_config={"RepositoryAccessMode": "Vpc",
                      "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": args["provider"]}})
    model.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name=args["endpoint"], wait=False)
    session.sagemaker_client.get_waiter("endpoint_in_service").wait(
        EndpointName=args["endpoint"], WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    predictor = Predictor(args["endpoint"], sagemaker_session=session, serializer=JSONSerializer(),
                          deserializer=JSONDeserializer())
    answer = predictor.predict([[1, 1], [2, 0]])
    predictor.delete_endpoint(delete_endpoint_config=True)
    print(json.dumps({"answer": answer, "model": model.name}))
''')


def test_the_sdks_sklearn_model_deploys_the_users_inference_code(server, moto, s3, basic_registry, pki,
                                                                 tmp_path_factory, tmp_path):
    if not SDK_V2_PYTHON.exists():
        pytest.fail(f"{SDK_V2_PYTHON} is missing: `make test` installs it (WITH_SDK_V2=1 scripts/setup.sh)")
    image = build_toolkit_image(tmp_path_factory, pki, basic_registry, "sdk-serve-toolkit")
    source = tmp_path / "src"
    source.mkdir()
    (source / "inference.py").write_text(INFERENCE_PY)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps({"weights": [2.0, 3.0], "bias": 1.0}).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    key = f"models/{unique('sdk')}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    endpoint = unique("sdk-sklearn-endpoint")
    args = {"bucket": BUCKET, "source_dir": str(source), "image": image, "role": ROLE, "endpoint": endpoint,
            "provider": function_arn("registry-creds"), "vpc": VPC, "model_data": f"s3://{BUCKET}/{key}"}
    ran = run_sdk(SDK_DEPLOY_SCRIPT, args, sdk_env(server, moto, tmp_path))
    assert ran["answer"] == {"predictions": [6.0, 5.0], "from": "user inference.py",
                             "where": "/opt/ml/code/inference.py"}
    environment = server.client("sagemaker").describe_model(ModelName=ran["model"])["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"].startswith(f"s3://{BUCKET}/deploy-code/")
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"].endswith("/sourcedir.tar.gz")
