"""Requests refused at CreateTrainingJob time, with AWS's error codes and the field named."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from training_support import busybox_job, job_request, unique


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]


def test_invalid_names_enums_and_lengths_name_the_field(sagemaker, training_images):
    code, message = error_of(sagemaker.create_training_job, **job_request("bad_name", training_images.busybox))
    assert code == "ValidationException" and "trainingJobName" in message
    request = job_request("x" * 64, training_images.busybox)
    code, message = error_of(sagemaker.create_training_job, **request)
    assert code == "ValidationException" and "trainingJobName" in message and "63" in message
    request = job_request(unique("enum"), training_images.busybox)
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Stream"
    code, message = error_of(sagemaker.create_training_job, **request)
    assert code == "ValidationException" and "trainingInputMode" in message
    request = job_request(unique("itype"), training_images.busybox, ResourceConfig={"InstanceType": "ml.nope.big"})
    code, message = error_of(sagemaker.create_training_job, **request)
    assert code == "ValidationException" and "instanceType" in message


def test_platform_mode_needs_a_platform_registry_and_vpc_needs_vpcconfig(sagemaker, training_images):
    request = job_request(unique("platform"), training_images.busybox, provider=None)
    request["AlgorithmSpecification"]["TrainingImageConfig"] = {"TrainingRepositoryAccessMode": "Platform"}
    code, message = error_of(sagemaker.create_training_job, **request)
    assert code == "ValidationException" and "Vpc" in message
    request = job_request(unique("novpc"), training_images.busybox)
    del request["VpcConfig"]
    code, message = error_of(sagemaker.create_training_job, **request)
    assert code == "ValidationException" and "VpcConfig" in message


def test_unknown_provider_instance_count_and_duplicates(sagemaker, training_images):
    code, message = error_of(sagemaker.create_training_job,
                             **job_request(unique("noprov"), training_images.busybox, provider="nobody"))
    assert code == "ValidationException" and "nobody" in message
    request = job_request(unique("multi"), training_images.busybox, ResourceConfig={"InstanceCount": 2})
    code, message = error_of(sagemaker.create_training_job, **request)
    assert code == "ValidationException" and "not yet supported" in message
    name = unique("dup")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "true"))
    code, _ = error_of(sagemaker.create_training_job, **busybox_job(name, training_images.busybox, "true"))
    assert code == "ResourceInUse"


def test_missing_job_is_a_validation_exception(sagemaker):
    code, message = error_of(sagemaker.describe_training_job, TrainingJobName="never-created")
    assert code == "ValidationException" and message == "Requested resource not found."
    code, _ = error_of(sagemaker.stop_training_job, TrainingJobName="never-created")
    assert code == "ValidationException"
