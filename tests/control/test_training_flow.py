"""AWS's documented private-registry `create_training_job` code, unchanged, against `forklift serve`:
the image comes from a TLS registry that requires auth, credentials come from a registered provider
function, input from an S3-style bucket, and the model lands at the output path."""

from __future__ import annotations

import json
import tarfile

import httpx
from training_support import ROLE, VPC, function_arn, unique


def raw_describe(server, name: str) -> dict:
    response = httpx.post(server.url, json={"TrainingJobName": name},
                          headers={"X-Amz-Target": "SageMaker.DescribeTrainingJob",
                                   "Content-Type": "application/x-amz-json-1.1"})
    return response.json()


def test_documented_private_registry_flow_completes(server, sagemaker, training_images):
    data = server.home / "buckets" / "your-training-data-bucket" / "training-data-folder"
    (data / "part-1.csv").write_text("1,2\n3,4\n")
    (data / "part-2.csv").write_text("5,6\n")

    # --- the documented code, with the image, job name and provider ARN filled in -------------------
    training_image_config = {
        'TrainingRepositoryAccessMode': 'Vpc',
        'TrainingRepositoryAuthConfig': {
            'TrainingRepositoryCredentialsProviderArn': function_arn("registry-creds")
        }
    }
    algorithm_specification = {
        'TrainingImage': training_images.python,
        'TrainingImageConfig': training_image_config,
        'TrainingInputMode': 'File'
    }
    training_job_name = unique('private-registry-job')
    execution_role_arn = ROLE
    vpc_config = VPC
    resource_config = {'InstanceType': 'ml.m4.xlarge', 'InstanceCount': 1, 'VolumeSizeInGB': 10}
    input_data_config = [{"ChannelName": "training", "DataSource": {"S3DataSource": {
        "S3DataDistributionType": "FullyReplicated", "S3DataType": "S3Prefix",
        "S3Uri": "s3://your-training-data-bucket/training-data-folder"}}}]
    output_data_config = {'S3OutputPath': 's3://your-output-data-bucket/model-folder'}
    stopping_condition = {'MaxRuntimeInSeconds': 1800}
    sm = sagemaker
    resp = sm.create_training_job(
        TrainingJobName=training_job_name,
        AlgorithmSpecification=algorithm_specification,
        RoleArn=execution_role_arn,
        InputDataConfig=input_data_config,
        OutputDataConfig=output_data_config,
        ResourceConfig=resource_config,
        VpcConfig=vpc_config,
        StoppingCondition=stopping_condition,
        HyperParameters={"epochs": "3"},
    )
    # -------------------------------------------------------------------------------------------------
    assert resp["TrainingJobArn"] == f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{training_job_name}"

    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=training_job_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    job = sm.describe_training_job(TrainingJobName=training_job_name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all(t["StatusMessage"] for t in job["SecondaryStatusTransitions"])
    resolved = f"{training_images.python.rsplit(':', 1)[0]}@{training_images.python_digest}"
    assert raw_describe(server, training_job_name)["ResolvedTrainingImage"] == resolved  # botocore drops extras
    assert any(resolved in t["StatusMessage"] for t in job["SecondaryStatusTransitions"])
    for key in ("TrainingStartTime", "TrainingEndTime", "LastModifiedTime", "CreationTime"):
        assert key in job
    assert job["TrainingTimeInSeconds"] >= 0 and job["BillableTimeInSeconds"] >= 0
    artifacts = f"s3://your-output-data-bucket/model-folder/{training_job_name}/output/model.tar.gz"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == artifacts

    archive = server.home / "buckets" / "your-output-data-bucket" / "model-folder" / training_job_name / "output"
    with tarfile.open(archive / "model.tar.gz") as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model == {"rows": 3, "mean": [3.0, 4.0], "hyperparameters": {"epochs": "3"}, "host": "algo-1",
                     "job": training_job_name}
    with tarfile.open(archive / "output.tar.gz") as tar:
        assert tar.extractfile("metrics.txt").read() == b"rows=3\n"

    # the logs, through boto3's CloudWatch Logs client
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{training_job_name}/")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith(f"{training_job_name}/algo-1-")
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    messages = [e["message"] for e in events]
    assert "argv ['train']" in messages and "trained on 3 rows" in messages
