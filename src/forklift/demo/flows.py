"""The demo's steps, each the way a user of the guides would do it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forklift.config import load_settings
from forklift.credentials import Credentials, StaticKeychain
from forklift.demo.harness import DEMO_USER, Server
from forklift.demo.samples import build_sample_image, training_csv
from forklift.devregistry import LocalRegistry, create_pki, install_ca
from forklift.images.imagestore import ImageStore
from forklift.images.push import push, source_from_store
from forklift.storage import bucket_store

TRAINING_DATA = "s3://your-training-data-bucket/training-data-folder"
OUTPUT_PATH = "s3://your-output-data-bucket/model-folder"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
VPC_CONFIG = {"SecurityGroupIds": ["sg-0123456789abcdef0"],
              "Subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}
PROVIDER = '''\
def handler(event, context):
    return {"Credentials": {"Username": %r, "Password": %r}}
'''


@dataclass
class DemoContext:
    work: Path
    home: Path
    password: str  # never printed: the demo shows credentials flowing, not their value
    say: Callable[[str], None]
    registry: object | None = None
    server: object | None = None
    training_image: str = ""
    inference_image: str = ""
    function_arn: str = ""
    model_artifacts: str = ""
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up; the demo's result is already decided
                self.say(f"    cleanup: {exc}")


def run_flows(ctx: DemoContext, timings) -> None:

    ctx.home.mkdir(parents=True)
    os.environ["FORKLIFT_HOME"] = str(ctx.home)
    # AWS's documented code calls boto3.client('sagemaker') with no endpoint: point boto3 at forklift.
    for variable, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "forklift-demo"),
                            ("AWS_SECRET_ACCESS_KEY", "forklift-demo")):
        os.environ.setdefault(variable, value)

    with timings.step("start a private registry (TLS with a generated CA, basic auth)"):
        start_registry(ctx, DEMO_USER)
    with timings.step("build the training/inference image and push it with credentials"):
        build_and_push(ctx, DEMO_USER)
    with timings.step("register a credentials-provider function"):
        register_function(ctx, DEMO_USER)
    with timings.step("upload training data and start forklift serve"):
        upload_data(ctx)
        start_server(ctx)
    with timings.step("train with AWS's documented create_training_job code (Vpc mode, credentials function)"):
        train(ctx)
    with timings.step("deploy with AWS's documented create_model/endpoint code and invoke the endpoint"):
        deploy_and_invoke(ctx)
    with timings.step("the same image as a Gradient-style experiment with --registryUsername/--registryPassword"):
        experiment(ctx, DEMO_USER)


def start_registry(ctx: DemoContext, user: str) -> None:

    pki = create_pki(ctx.work / "pki")
    ctx.registry = LocalRegistry(ctx.work / "registry", pki, htpasswd={user: ctx.password}).start()
    ctx.cleanups.append(ctx.registry.stop)
    install_ca(pki, ctx.home / "certs.d", ctx.registry.address)
    ctx.say(f"    registry at {ctx.registry.url}; its CA in {ctx.home / 'certs.d' / ctx.registry.address}")


def build_and_push(ctx: DemoContext, user: str) -> None:

    store = ImageStore(load_settings())
    ctx.training_image = f"{ctx.registry.address}/docker-local/my-training-image:1.0"
    ctx.inference_image = f"{ctx.registry.address}/docker-local/my-inference-image:latest"
    image = build_sample_image(store, ctx.work, ctx.training_image)
    keychain = StaticKeychain(Credentials(user, ctx.password))
    pushed = asyncio.run(push(source_from_store(store, image.reference), ctx.training_image, store,
                              keychain=keychain))
    ctx.say(f"    {ctx.training_image} ({sum(layer.size for layer in image.layers) / 1e6:.0f} MB, "
            f"{len(image.layers)} layers) digest {pushed.digest}")
    # One program serves both contracts (train/serve); the inference repository gets the same
    # image, its layers mounted from the training repository rather than uploaded again.
    mounted = asyncio.run(push(source_from_store(store, image.reference), ctx.inference_image, store,
                               keychain=keychain))
    ctx.say(f"    {ctx.inference_image} (blobs {', '.join(sorted(set(mounted.statuses.values())))})")
    store.remove(ctx.inference_image)
    # Start cold, as a fresh server would: everything the jobs run comes from the registry.
    store.remove(ctx.training_image)
    store.prune()


def register_function(ctx: DemoContext, user: str) -> None:
    handler = ctx.work / "registry_credentials.py"
    handler.write_text(PROVIDER % (user, ctx.password))
    handler.chmod(0o600)
    result = forklift(ctx, "functions", "register", "my-registry-credentials", "--handler", str(handler))
    ctx.function_arn = result.stdout.strip().splitlines()[-1]
    handler.unlink()  # forklift keeps the code, encrypted
    ctx.say(f"    {ctx.function_arn}")


def upload_data(ctx: DemoContext) -> None:

    buckets = bucket_store(load_settings())
    for bucket in ("your-training-data-bucket", "your-output-data-bucket"):
        buckets.make_bucket(bucket)
    data = ctx.work / "train.csv"
    data.write_text(training_csv())
    buckets.upload(data, f"{TRAINING_DATA}/train.csv")
    ctx.say(f"    {TRAINING_DATA}/train.csv (200 rows)")


def start_server(ctx: DemoContext) -> None:

    ctx.server = Server(ctx.home, ctx.work / "server.log")
    ctx.cleanups.append(ctx.server.stop)
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = ctx.server.url
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = ctx.server.url
    os.environ["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = ctx.server.url
    ctx.say(f"    forklift serve at {ctx.server.url} (AWS_ENDPOINT_URL_SAGEMAKER points boto3 there)")


def train(ctx: DemoContext) -> None:
    import boto3

    # -- from the guide, unchanged but for the image and function names --------------------------
    training_image_config = {
        'TrainingRepositoryAccessMode': 'Vpc',
        'TrainingRepositoryAuthConfig': {
            'TrainingRepositoryCredentialsProviderArn': ctx.function_arn
        }
    }
    algorithm_specification = {
        'TrainingImage': ctx.training_image,
        'TrainingImageConfig': training_image_config,
        'TrainingInputMode': 'File'
    }
    training_job_name = 'private-registry-job'
    execution_role_arn = EXECUTION_ROLE
    vpc_config = VPC_CONFIG
    resource_config = {'InstanceType': 'ml.m4.xlarge', 'InstanceCount': 1, 'VolumeSizeInGB': 10}
    input_data_config = [{
        "ChannelName": "training",
        "DataSource": {"S3DataSource": {"S3DataDistributionType": "FullyReplicated", "S3DataType": "S3Prefix",
                                        "S3Uri": TRAINING_DATA}}}]
    output_data_config = {'S3OutputPath': OUTPUT_PATH}
    stopping_condition = {'MaxRuntimeInSeconds': 1800}
    sm = boto3.client('sagemaker')
    resp = sm.create_training_job(
        TrainingJobName=training_job_name,
        AlgorithmSpecification=algorithm_specification,
        RoleArn=execution_role_arn,
        InputDataConfig=input_data_config,
        OutputDataConfig=output_data_config,
        ResourceConfig=resource_config,
        VpcConfig=vpc_config,
        StoppingCondition=stopping_condition,
        HyperParameters={'metric': 'euclidean'},
    )
    # ---------------------------------------------------------------------------------------------
    ctx.say(f"    {resp['TrainingJobArn']}")
    sm.get_waiter('training_job_completed_or_stopped').wait(
        TrainingJobName=training_job_name, WaiterConfig={'Delay': 1, 'MaxAttempts': 600})
    job = sm.describe_training_job(TrainingJobName=training_job_name)
    for transition in job["SecondaryStatusTransitions"]:
        ctx.say(f"    {transition['Status']:<12} {transition['StatusMessage']}")
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"training job {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    for line in job_logs(training_job_name):
        ctx.say(f"    | {line}")
    ctx.model_artifacts = job["ModelArtifacts"]["S3ModelArtifacts"]
    ctx.say(f"    model: {ctx.model_artifacts}")


def deploy_and_invoke(ctx: DemoContext) -> None:
    import boto3

    # -- from the guide, unchanged but for the image and function names and the trained model ----
    image_config = {
        'RepositoryAccessMode': 'Vpc',
        'RepositoryAuthConfig': {
            'RepositoryCredentialsProviderArn': ctx.function_arn
        }
    }
    primary_container = {
        'ContainerHostname': 'ModelContainer',
        'Image': ctx.inference_image,
        'ImageConfig': image_config,
        'ModelDataUrl': ctx.model_artifacts,
    }
    model_name = 'vpc-model'
    execution_role_arn = EXECUTION_ROLE
    vpc_config = VPC_CONFIG
    sm = boto3.client('sagemaker')
    resp = sm.create_model(
        ModelName=model_name,
        PrimaryContainer=primary_container,
        ExecutionRoleArn=execution_role_arn,
        VpcConfig=vpc_config,
    )
    ctx.say(f"    {resp['ModelArn']}")
    endpoint_config_name = 'my-endpoint-config'
    sm.create_endpoint_config(
        EndpointConfigName=endpoint_config_name,
        ProductionVariants=[
            {
                'VariantName': 'MyVariant',
                'ModelName': model_name,
                'InitialInstanceCount': 1,
                'InstanceType': 'ml.t2.medium'
            },
        ],
    )
    endpoint_name = 'my-endpoint'
    sm.create_endpoint(
        EndpointName=endpoint_name,
        EndpointConfigName=endpoint_config_name,
    )
    sm.describe_endpoint(EndpointName=endpoint_name)
    # ---------------------------------------------------------------------------------------------
    sm.get_waiter('endpoint_in_service').wait(EndpointName=endpoint_name, WaiterConfig={'Delay': 1, 'MaxAttempts': 300})
    endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    for image in endpoint["ProductionVariants"][0]["DeployedImages"]:
        ctx.say(f"    {endpoint['EndpointStatus']}: {image['ResolvedImage']}")
    runtime = boto3.client('sagemaker-runtime')
    rows = "0.9,1.1\n4.2,2.8\n1.3,0.7\n"
    response = runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType='text/csv', Body=rows)
    predictions = response['Body'].read().decode()
    ctx.say(f"    invoke_endpoint {rows.strip().splitlines()} -> {predictions} "
            f"(variant {response['InvokedProductionVariant']})")
    if '"setosa", "virginica", "setosa"' not in predictions:
        raise RuntimeError(f"unexpected predictions: {predictions}")
    sm.delete_endpoint(EndpointName=endpoint_name)
    sm.get_waiter('endpoint_deleted').wait(EndpointName=endpoint_name, WaiterConfig={'Delay': 1, 'MaxAttempts': 60})
    ctx.say("    endpoint deleted")


def experiment(ctx: DemoContext, user: str) -> None:
    # The password goes on stdin (--registry-password-stdin) so it never shows in `ps`; the Gradient
    # spelling --registryPassword P works the same.
    result = forklift(ctx, "experiments", "run", "--name", "gradient-style", "--container", ctx.training_image,
                      "--registryUsername", user, "--registry-password-stdin", "--machineType", "C5",
                      "--input", f"training={TRAINING_DATA}", "--hyperparameter", "metric=euclidean",
                      stdin=ctx.password + "\n", env={"FORKLIFT_URL": ctx.server.url})
    for line in result.stdout.strip().splitlines():
        ctx.say(f"    | {line}")
    shown = forklift(ctx, "experiments", "show", "gradient-style", env={"FORKLIFT_URL": ctx.server.url})
    if ctx.password in result.stdout + result.stderr + shown.stdout:
        raise RuntimeError("the registry password was printed")
    ctx.say("    (the registry password appears nowhere in the output; it is stored encrypted until the "
            "experiment is deleted)")
    deleted = forklift(ctx, "experiments", "delete", "gradient-style", env={"FORKLIFT_URL": ctx.server.url})
    ctx.say(f"    {deleted.stdout.strip().splitlines()[-1] if deleted.stdout.strip() else 'deleted'}")


def job_logs(job_name: str) -> list[str]:
    import boto3

    logs = boto3.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")["logStreams"]
    lines = []
    for stream in streams:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
        lines += [event["message"] for event in events["events"]]
    return lines


def forklift(ctx: DemoContext, *args: str, stdin: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "forklift", *args], input=stdin, capture_output=True, text=True,
                            env={**os.environ, "FORKLIFT_HOME": str(ctx.home), **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"forklift {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result
