"""An experiment's stored registry credentials pull for its own runs only: the real `forklift experiments`
command, a real server, the private registry and runc.

The probe: a caller who reads the experiment's provider ARN (`…:function:forklift-secret-<id>`) off its job
names it in a training job or a model of their own; before, that job pulled with the experiment's
credentials.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from experiments_support import PASSWORD, USER

from fixtures.serve import ROLE, VPC

pytestmark = pytest.mark.usefixtures("exp_server")
FIELD = "TrainingRepositoryAuthConfig.TrainingRepositoryCredentialsProviderArn"


def _job(name: str, image: str, provider: str, tags: list[dict] | None = None) -> dict:
    config = {"TrainingRepositoryAccessMode": "Vpc",
              "TrainingRepositoryAuthConfig": {"TrainingRepositoryCredentialsProviderArn": provider}}
    request = {"TrainingJobName": name, "RoleArn": ROLE, "VpcConfig": VPC,
               "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                          "TrainingImageConfig": config},
               "OutputDataConfig": {"S3OutputPath": "s3://forklift-experiments/probe"},
               "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
               "StoppingCondition": {"MaxRuntimeInSeconds": 60}}
    if tags:
        request["Tags"] = tags
    return request


def _refused(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert PASSWORD not in error["Message"] and USER not in error["Message"]
    return error["Message"]


def test_only_the_experiments_own_runs_may_use_its_stored_credentials(exp_server, exp_images):
    first = exp_server.forklift("experiments", "run", "--name", "guarded", "--container", exp_images.busybox,
                                "--registryUsername", USER, "--registryPassword", PASSWORD, "--command", "echo mine")
    assert first.returncode == 0, first.stderr
    assert "mine" in first.stdout
    sagemaker = exp_server.client("sagemaker")
    job = sagemaker.describe_training_job(TrainingJobName="guarded")
    provider = job["AlgorithmSpecification"]["TrainingImageConfig"]["TrainingRepositoryAuthConfig"][
        "TrainingRepositoryCredentialsProviderArn"]
    assert ":function:forklift-secret-" in provider
    assert "forklift:experiment-run" not in json.dumps(job, default=str)  # the run's proof is kept nowhere

    # Another image of the same registry, with the experiment's credentials: refused at Create time.
    other = exp_images.cuda
    message = _refused(lambda: sagemaker.create_training_job(**_job("probe", other, provider)))
    assert f"{FIELD} {provider} is reserved for experiment guarded" in message
    # Spellings the function registry resolves to the same reserved function are reserved too.
    for spelling in (provider + " ", provider + "\t"):
        assert "reserved for experiment guarded" in _refused(
            lambda spelling=spelling: sagemaker.create_training_job(**_job("probe-pad", exp_images.busybox, spelling)))
    _refused(lambda: sagemaker.create_training_job(**_job("probe-pad", exp_images.busybox, provider + ":1")))
    # Claiming to be the experiment's run by its tag, or with a made-up proof, changes nothing.
    forged = [{"Key": "forklift:experiment", "Value": "guarded"},
              {"Key": "forklift:experiment-run", "Value": "0" * 64}]
    assert "reserved for experiment guarded" in _refused(
        lambda: sagemaker.create_training_job(**_job("guarded-7", exp_images.busybox, provider, forged)))
    # No model may name it.
    model = {"ModelName": "probe-model", "ExecutionRoleArn": ROLE, "VpcConfig": VPC,
             "PrimaryContainer": {"Image": exp_images.busybox, "ImageConfig": {
                 "RepositoryAccessMode": "Vpc",
                 "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": provider}}}}
    assert "RepositoryAuthConfig.RepositoryCredentialsProviderArn" in _refused(
        lambda: sagemaker.create_model(**model))
    for name in ("probe", "guarded-7"):
        with pytest.raises(ClientError):
            sagemaker.describe_training_job(TrainingJobName=name)

    # The experiment's own next run still pulls with them.
    again = exp_server.forklift("experiments", "start", "guarded", "--follow")
    assert again.returncode == 0, again.stderr
    assert "guarded-2" in again.stderr and "mine" in again.stdout
    assert exp_server.forklift("experiments", "delete", "guarded").returncode == 0
