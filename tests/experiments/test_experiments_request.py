"""How experiment options become a CreateTrainingJob request, machine types, and the CUDA heuristic."""

from __future__ import annotations

import pytest

from forklift.api.validation import operation_model
from forklift.control.instance_types import INSTANCE_TYPES
from forklift.experiments import request as rq
from forklift.experiments.cuda import looks_cuda
from forklift.experiments.machines import (
    GRADIENT_MACHINES,
    UnknownMachineType,
    resolve_machine,
)


@pytest.mark.parametrize("given, expected", [
    ("tensorflow/tensorflow:1.5.1-gpu", "docker.io/tensorflow/tensorflow:1.5.1-gpu"),
    ("ubuntu", "docker.io/library/ubuntu:latest"),
    ("docker.io/myorganization/my_private_repo:latest", "docker.io/myorganization/my_private_repo:latest"),
    ("docker.io:/paperspace/tom_test_private", "docker.io/paperspace/tom_test_private:latest"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/mynamespace/repo",
     "123456789012.dkr.ecr.us-east-1.amazonaws.com/mynamespace/repo:latest"),
    ("gcr.io/myproject/my_private_repo:latest", "gcr.io/myproject/my_private_repo:latest"),
    ("eu.gcr.io/p/r:v1", "eu.gcr.io/p/r:v1"),
    ("localhost:5000/team/train@sha256:" + "a" * 64, "localhost:5000/team/train@sha256:" + "a" * 64),
])
def test_experiments_container_syntax(given, expected):
    assert rq.normalize_container(given) == expected


def test_experiments_invalid_container_is_an_error():
    with pytest.raises(ValueError):
        rq.normalize_container("UPPER/Case:tag")


def test_experiments_pairs():
    assert rq.parse_pairs(["A=1", "B=x=y", "A=2", "C="], "--env") == {"A": "2", "B": "x=y", "C": ""}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        rq.parse_pairs(["novalue"], "--env")


def test_experiments_names():
    assert rq.check_name("mnist-1") == "mnist-1"
    for bad in ("-x", "a_b", "x" * 57, ""):
        with pytest.raises(ValueError):
            rq.check_name(bad)
    assert rq.job_name("mnist", 1) == "mnist" and rq.job_name("mnist", 3) == "mnist-3"


def test_experiments_request_shape_is_valid_for_botocore():
    arn = "arn:aws:lambda:us-east-1:000000000000:function:forklift-secret-" + "0" * 32
    request = rq.training_request(
        experiment="mnist", job="mnist", image="localhost:5000/t/img:1", instance_type="ml.m5.large",
        role_arn="arn:aws:iam::000000000000:role/forklift-experiments", command="python train.py --epochs 3",
        workspace_uri="s3://forklift-workspaces/mnist/code.tar.gz", provider_arn=arn, env={"K": "V"},
        hyperparameters={"lr": "0.1"}, inputs={"training": "s3://data/train/"}, max_runtime=60, cloned_from="m0")
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["ContainerEntrypoint"][:2] == ["/bin/sh", "-c"]
    script = algorithm["ContainerEntrypoint"][2]
    assert "tar -xzf /opt/ml/input/data/code/code.tar.gz -C /opt/ml/code" in script
    assert script.endswith("; python train.py --epochs 3") and "\n" not in script
    rq.check_request(request)  # what the server checks: patterns, enums, lengths
    assert algorithm["TrainingImageConfig"] == {
        "TrainingRepositoryAccessMode": "Vpc",
        "TrainingRepositoryAuthConfig": {"TrainingRepositoryCredentialsProviderArn": arn}}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels == {"training": "s3://data/train/", "code": "s3://forklift-workspaces/mnist/code.tar.gz"}
    assert {"Key": "forklift:experiment", "Value": "mnist"} in request["Tags"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 60}
    assert request["Environment"] == {"K": "V"} and request["HyperParameters"] == {"lr": "0.1"}
    # Every member is one botocore's SageMaker model knows.
    members = operation_model("sagemaker", "CreateTrainingJob").input_shape.members
    assert set(request) <= set(members)


def test_experiments_request_rules():
    common = {"experiment": "e", "job": "e", "image": "i:1", "instance_type": "ml.m5.large", "role_arn": "r"}
    with pytest.raises(ValueError, match="--workspace needs --command"):
        rq.training_request(**common, workspace_uri="s3://b/k")
    with pytest.raises(ValueError, match="reserved"):
        rq.training_request(**common, command="x", workspace_uri="s3://b/k", inputs={"code": "s3://b/c"})
    with pytest.raises(ValueError, match="s3://"):
        rq.training_request(**common, inputs={"training": "/tmp/data"})
    plain = rq.training_request(**common)
    assert "ContainerEntrypoint" not in plain["AlgorithmSpecification"]  # the image runs with `train`
    assert rq.training_request(**common, command="echo hi")["AlgorithmSpecification"]["ContainerEntrypoint"] == \
        ["/bin/sh", "-c", "echo hi"]


def test_experiments_machine_types():
    assert resolve_machine("ml.p3.2xlarge").instance_type == "ml.p3.2xlarge"
    assert resolve_machine("c5").instance_type == "ml.c5.xlarge"
    assert resolve_machine("C4").is_gpu is False
    for gpu in ("P4000", "P5000", "RTX4000", "V100", "A100"):
        machine = resolve_machine(gpu)
        assert machine.is_gpu and machine.given == gpu
    assert resolve_machine(None).instance_type == "ml.m5.large"
    assert all(target in INSTANCE_TYPES for target in GRADIENT_MACHINES.values())
    trainable = operation_model("sagemaker", "CreateTrainingJob").input_shape.members["ResourceConfig"] \
        .members["InstanceType"].enum
    assert set(GRADIENT_MACHINES.values()) <= set(trainable)
    with pytest.raises(UnknownMachineType) as info:
        resolve_machine("K9000")
    assert "P4000" in str(info.value) and "`forklift instance-types --training` lists them" in str(info.value)
    # The API's own table decides for ml.* names: what it trains on, experiments train on.
    assert resolve_machine("ml.c7i.large").instance_type == "ml.c7i.large"
    with pytest.raises(UnknownMachineType) as info:
        resolve_machine("ml.t2.medium")
    assert "not a training instance type" in str(info.value) and "did you mean ml.t3.medium" in str(info.value)


def test_experiments_cuda_heuristic():
    assert looks_cuda({"config": {"Env": ["PATH=/bin", "CUDA_VERSION=12.2.0"]}})
    assert looks_cuda({"config": {"Labels": {"com.nvidia.cudnn.version": "8"}}})
    assert looks_cuda({"history": [{"created_by": "/bin/sh -c #(nop) ENV NV_CUDA_LIB_VERSION=11.8"}]})
    assert not looks_cuda({"config": {"Env": ["PATH=/bin"]}, "history": [{"created_by": "COPY . /"}]})
    assert not looks_cuda({})
