"""Failure reasons: what CreateModel refuses (credentials, images, access mode) and why an endpoint
ends Failed (the container never answers /ping, exits at start, the model data is missing)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, WaiterError
from inference_support import ROLE, VPC, create_config, create_model, function_arn, unique, wait_status


def _create_model_error(sm, image: str, **container_extra) -> str:
    config = container_extra.pop("ImageConfig", {"RepositoryAccessMode": "Vpc", "RepositoryAuthConfig": {
        "RepositoryCredentialsProviderArn": function_arn("registry-creds")}})
    with pytest.raises(ClientError) as excinfo:
        sm.create_model(ModelName=unique("bad-model"), ExecutionRoleArn=ROLE, VpcConfig=VPC,
                        PrimaryContainer={"Image": image, "ImageConfig": config, **container_extra})
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    return excinfo.value.response["Error"]["Message"]


def test_wrong_credentials_fail_at_create_model(sagemaker, inference_image, basic_registry):
    message = _create_model_error(sagemaker, inference_image, ImageConfig={
        "RepositoryAccessMode": "Vpc",
        "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": function_arn("wrong-creds")}})
    assert "Authentication" in message and basic_registry.address in message


def test_unknown_credentials_provider_fails_at_create_model(sagemaker, inference_image):
    message = _create_model_error(sagemaker, inference_image, ImageConfig={
        "RepositoryAccessMode": "Vpc",
        "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": function_arn("no-such-function")}})
    assert "no-such-function" in message


def test_missing_image_fails_at_create_model(sagemaker, inference_image):
    message = _create_model_error(sagemaker, inference_image.rsplit(":", 1)[0] + ":does-not-exist")
    assert "not found" in message


def test_private_registry_needs_vpc_access_mode(sagemaker, inference_image):
    message = _create_model_error(sagemaker, inference_image, ImageConfig={"RepositoryAccessMode": "Platform"})
    assert "Vpc" in message


def test_a_providers_exception_text_stays_on_the_server(sagemaker, server, inference_image, tmp_path):
    handler = tmp_path / "vault.py"
    handler.write_text("def handler(event, context):\n"
                       "    raise RuntimeError('vault unreachable: token hunter2-SECRET')\n")
    name = unique("vault")
    registered = server.forklift("functions", "register", name, "--handler", str(handler))
    assert registered.returncode == 0, registered.stderr
    message = _create_model_error(sagemaker, inference_image, ImageConfig={
        "RepositoryAccessMode": "Vpc",
        "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": function_arn(name)}})
    assert name in message and "RuntimeError" in message and f"forklift functions logs {name}" in message
    assert "hunter2-SECRET" not in message
    logs = server.forklift("functions", "logs", name)
    assert "RuntimeError: vault unreachable: token hunter2-SECRET" in logs.stdout


def test_model_data_outside_the_file_roots_is_refused(sagemaker, inference_image):
    """The session's server lists no file_roots, so the server reads no host file for a model."""
    message = _create_model_error(sagemaker, inference_image, ModelDataUrl="file:///etc/model.tar.gz")
    assert "PrimaryContainer.ModelDataUrl" in message and "file:///etc/model.tar.gz" in message
    assert "file_roots" in message


def test_script_mode_code_outside_the_file_roots_is_refused(sagemaker, inference_image):
    """The code archive is staged from the host as the model data is: CreateModel holds it to the same roots."""
    message = _create_model_error(sagemaker, inference_image,
                                  Environment={"SAGEMAKER_SUBMIT_DIRECTORY": "file:///etc/sourcedir.tar.gz"})
    assert "PrimaryContainer.Environment.SAGEMAKER_SUBMIT_DIRECTORY" in message
    assert "file:///etc/sourcedir.tar.gz" in message and "file_roots" in message


def test_describe_missing_resources_is_a_validation_exception(sagemaker):
    for call, kwargs, text in ((sagemaker.describe_endpoint, {"EndpointName": "nope"}, "endpoint/nope"),
                               (sagemaker.describe_model, {"ModelName": "nope"}, "model/nope"),
                               (sagemaker.describe_endpoint_config, {"EndpointConfigName": "nope"},
                                "endpoint-config/nope")):
        with pytest.raises(ClientError) as excinfo:
            call(**kwargs)
        assert excinfo.value.response["Error"]["Code"] == "ValidationException"
        assert text in excinfo.value.response["Error"]["Message"]


def _failed_endpoint(sm, server, image, **model_args) -> dict:
    model = create_model(sm, server, image, **model_args)
    name = unique("failing")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("Primary", model, 1, 1.0)]))
    endpoint = wait_status(sm, name)
    assert endpoint["EndpointStatus"] == "Failed"
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    return endpoint


def test_container_that_never_answers_ping_fails_the_endpoint(sagemaker, server, inference_image):
    endpoint = _failed_endpoint(sagemaker, server, inference_image, environment={"MODE": "never-ready"})
    assert "Variant Primary" in endpoint["FailureReason"]
    assert "health check timed out" in endpoint["FailureReason"]


def test_container_that_exits_fails_the_endpoint_with_its_logs(sagemaker, server, inference_image):
    endpoint = _failed_endpoint(sagemaker, server, inference_image, environment={"MODE": "crash"})
    assert "Variant Primary" in endpoint["FailureReason"]
    assert "exited with code 3" in endpoint["FailureReason"]
    assert "weights are missing" in endpoint["FailureReason"]


def test_missing_model_data_fails_the_endpoint(sagemaker, server, inference_image):
    model = create_model(sagemaker, server, inference_image)
    (server.home / "buckets" / "models" / model / "model.tar.gz").unlink()
    name = unique("no-data")
    sagemaker.create_endpoint(EndpointName=name,
                              EndpointConfigName=create_config(sagemaker, [("Primary", model, 1, 1.0)]))
    endpoint = wait_status(sagemaker, name)
    assert endpoint["EndpointStatus"] == "Failed"
    assert "model data" in endpoint["FailureReason"] and model in endpoint["FailureReason"]
