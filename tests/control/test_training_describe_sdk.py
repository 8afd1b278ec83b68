"""DescribeTrainingJob answers what AWS answers by default, so the SageMaker Python SDK v2 can attach to a job.

Against the module's real `forklift serve`: a busybox job runs to completion, its description is held to
botocore's output shape and to the members the SDK indexes, the `Tags` it was created with are read back
with ListTags, and `Estimator.attach` in the SDK v2's own interpreter rebuilds the estimator from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from training_support import busybox_job, unique, wait_for

from fixtures.describeshapes import problems
from fixtures.serve import CREDENTIALS, REGION

SDK_V2_PYTHON = Path(sys.executable).parent.parent / "sagemaker-sdk-v2" / "bin" / "python"
TAGS = [{"Key": "team", "Value": "vision"}, {"Key": "cost-centre", "Value": "42"}]
HYPERPARAMETERS = {"epochs": "3", "rate": "0.1"}
ATTACH = r'''
import json, sys
import boto3, sagemaker
from sagemaker.estimator import Estimator

url, name = sys.argv[1:3]
boto_session = boto3.Session(region_name=sys.argv[3])
client = boto_session.client("sagemaker", endpoint_url=url)
session = sagemaker.Session(boto_session=boto_session, sagemaker_client=client, default_bucket="unused")
estimator = Estimator.attach(name, sagemaker_session=session)
print(json.dumps({"image_uri": estimator.image_uri, "role": estimator.role,
                  "instance_type": estimator.instance_type, "instance_count": estimator.instance_count,
                  "volume_size": estimator.volume_size, "max_run": estimator.max_run,
                  "output_path": estimator.output_path, "output_kms_key": estimator.output_kms_key,
                  "hyperparameters": estimator.hyperparameters(), "model_data": estimator.model_data,
                  "tags": estimator.tags}))
'''


@pytest.fixture
def completed_job(sagemaker, training_images) -> dict:
    name = unique("attach")
    request = busybox_job(name, training_images.busybox, "echo weights > /opt/ml/model/weights.txt",
                          HyperParameters=HYPERPARAMETERS, Tags=TAGS)
    del request["ResourceConfig"]["VolumeSizeInGB"]  # AWS's defaults are filled in where the request is silent
    del request["StoppingCondition"]
    sagemaker.create_training_job(**request)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return {"request": request, "job": job}


def test_the_description_has_every_member_aws_and_the_sdk_rely_on(sagemaker, completed_job):
    job = completed_job["job"]
    assert problems("DescribeTrainingJob", job) == []
    assert job["OutputDataConfig"]["KmsKeyId"] == "" and job["OutputDataConfig"]["CompressionType"] == "GZIP"
    assert job["ResourceConfig"]["VolumeSizeInGB"] == 30
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 86400
    assert (job["EnableNetworkIsolation"], job["EnableInterContainerTrafficEncryption"],
            job["EnableManagedSpotTraining"]) == (False, False, False)
    assert job["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] is False
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]
    assert sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"] == TAGS


def test_what_a_request_sets_is_answered_over_the_defaults(sagemaker, training_images):
    name = unique("explicit")
    request = busybox_job(name, training_images.busybox, "true", EnableNetworkIsolation=True,
                          OutputDataConfig={"KmsKeyId": "alias/mine", "CompressionType": "NONE"},
                          StoppingCondition={"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 900},
                          EnableManagedSpotTraining=True)
    sagemaker.create_training_job(**request)
    job = sagemaker.describe_training_job(TrainingJobName=name)
    assert problems("DescribeTrainingJob", job) == []
    assert job["OutputDataConfig"] == {**request["OutputDataConfig"]}
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 900}
    assert job["ResourceConfig"]["VolumeSizeInGB"] == 10
    assert (job["EnableNetworkIsolation"], job["EnableManagedSpotTraining"]) == (True, True)
    wait_for(sagemaker, name)


def test_the_sdk_v2_attaches_to_a_finished_job(server, completed_job, tmp_path):
    if not SDK_V2_PYTHON.exists():
        pytest.skip(f"the SageMaker Python SDK v2 is not installed at {SDK_V2_PYTHON} "
                    "(WITH_SDK_V2=1 scripts/setup.sh installs it)")
    home = tmp_path / "home"
    (home / ".config" / "sagemaker").mkdir(parents=True)
    # the SDK would otherwise report each call to AWS's telemetry endpoint
    (home / ".config" / "sagemaker" / "config.yaml").write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_", "PYTHON"))}
    env.update(HOME=str(home), SAGEMAKER_SUPPRESS_V2_WARNING="1", AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"], AWS_EC2_METADATA_DISABLED="true")
    name = completed_job["job"]["TrainingJobName"]
    result = subprocess.run([str(SDK_V2_PYTHON), "-c", ATTACH, server.url, name, REGION], env=env,
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    attached = json.loads(result.stdout.strip().splitlines()[-1])
    request, job = completed_job["request"], completed_job["job"]
    assert attached == {
        "image_uri": request["AlgorithmSpecification"]["TrainingImage"], "role": request["RoleArn"],
        "instance_type": "ml.m4.xlarge", "instance_count": 1, "volume_size": 30, "max_run": 86400,
        "output_path": request["OutputDataConfig"]["S3OutputPath"], "output_kms_key": "",
        "hyperparameters": HYPERPARAMETERS, "model_data": job["ModelArtifacts"]["S3ModelArtifacts"],
        "tags": TAGS}
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/{name}/output/model.tar.gz")
