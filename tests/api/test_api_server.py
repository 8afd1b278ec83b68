"""Real boto3 clients against a real `forklift serve` subprocess: the wire format AWS SDKs rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


def training_job(**overrides):
    request = {
        "TrainingJobName": "job-1",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "registry.example.com/algo:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    request.update(overrides)
    return request


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def raw_post(server, target: str, body: bytes | str) -> httpx.Response:
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    return httpx.post(server.url + "/", content=body, headers=headers, timeout=10)


def test_server_file_names_url_and_pid(server) -> None:
    info = json.loads((server.home / "server.json").read_text())
    assert (info["url"], info["pid"], info["log"]) == (server.url, server.process.pid, None)
    assert abs(info["started"] - time.time()) < 600
    ping = httpx.get(server.url + "/ping", timeout=5)
    assert ping.status_code == 200 and ping.json()["status"] == "Healthy"
    uuid.UUID(ping.headers["x-amzn-RequestId"], version=4)


# Operations of botocore's model that forklift will never serve (the control plane's are registered).
@pytest.mark.parametrize("call", [
    lambda sm: sm.describe_domain(DomainId="d-123"),
    lambda sm: sm.describe_notebook_instance(NotebookInstanceName="nb-1"),
    lambda sm: sm.list_pipelines(),
])
def test_operations_without_handler_are_unknown_not_500(sagemaker, call) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(sagemaker)
    code, message, status = error_of(excinfo)
    assert (code, status) == ("UnknownOperationException", 400)
    assert message.endswith("is not supported by forklift")


def test_request_id_becomes_response_metadata(sagemaker) -> None:
    with pytest.raises(ClientError) as excinfo:
        sagemaker.describe_domain(DomainId="d-123")
    request_id = excinfo.value.response["ResponseMetadata"]["RequestId"]
    assert uuid.UUID(request_id).version == 4


def test_bad_name_pattern(sagemaker) -> None:
    with pytest.raises(ClientError) as excinfo:
        sagemaker.create_training_job(**training_job(TrainingJobName="my_job"))
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value 'my_job' at 'trainingJobName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}",
        400)


def test_name_too_long_breaks_length_and_pattern(sagemaker) -> None:
    name = "a" * 64  # the pattern allows 63 characters too, so AWS reports both rules
    with pytest.raises(ClientError) as excinfo:
        sagemaker.create_training_job(**training_job(TrainingJobName=name))
    assert error_of(excinfo)[1] == (
        f"2 validation errors detected: Value '{name}' at 'trainingJobName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63; "
        f"Value '{name}' at 'trainingJobName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}")


def test_bad_enum(sagemaker) -> None:
    spec = {"TrainingImage": "registry.example.com/algo:1", "TrainingInputMode": "Bogus"}
    with pytest.raises(ClientError) as excinfo:
        sagemaker.create_training_job(**training_job(AlgorithmSpecification=spec))
    assert error_of(excinfo)[1] == (
        "1 validation error detected: Value 'Bogus' at 'algorithmSpecification.trainingInputMode' "
        "failed to satisfy constraint: Member must satisfy enum value set: [Pipe, FastFile, File]")


def test_missing_required_member_over_raw_http(server) -> None:
    body = training_job()
    del body["RoleArn"]  # botocore refuses this client-side; AWS answers it server-side
    response = raw_post(server, "SageMaker.CreateTrainingJob", json.dumps(body))
    assert response.status_code == 400
    assert response.json() == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: "
                   "Member must not be null",
    }
    assert response.headers["x-amzn-RequestId"]


def test_several_violations_are_counted_and_joined(sagemaker) -> None:
    with pytest.raises(ClientError) as excinfo:
        sagemaker.create_training_job(**training_job(TrainingJobName="bad_name", RoleArn="role/not-an-arn-at-all"))
    assert error_of(excinfo)[1] == (
        "2 validation errors detected: "
        "Value 'role/not-an-arn-at-all' at 'roleArn' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
        "arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+; "
        "Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}")


def test_numeric_range(sagemaker) -> None:
    with pytest.raises(ClientError) as excinfo:
        sagemaker.list_training_jobs(MaxResults=101)
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 100",
        400)


def test_list_member_path(sagemaker) -> None:
    channels = [
        {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train"}}},
        {"ChannelName": "bad channel", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/v"}}},
    ]
    with pytest.raises(ClientError) as excinfo:
        sagemaker.create_training_job(**training_job(InputDataConfig=channels))
    assert error_of(excinfo)[1] == (
        "1 validation error detected: Value 'bad channel' at 'inputDataConfig.2.member.channelName' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9\\.\\-_]+")


def test_malformed_json_is_serialization_exception(server) -> None:
    response = raw_post(server, "SageMaker.CreateTrainingJob", b'{"TrainingJobName": ')
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


def test_unsupported_operations_are_still_validated(server) -> None:
    """A bad request is reported as such even where forklift has no handler; a good one is unknown."""
    bad = raw_post(server, "SageMaker.DescribeNotebookInstance", json.dumps({"NotebookInstanceName": "a_b"}))
    assert (bad.status_code, bad.json()["__type"]) == (400, "ValidationException")
    good = raw_post(server, "SageMaker.DescribeNotebookInstance", json.dumps({"NotebookInstanceName": "a-b"}))
    assert (good.status_code, good.json()["__type"]) == (400, "UnknownOperationException")
    outside = raw_post(server, "SageMaker.LaunchRocket", b"{}")
    assert (outside.status_code, outside.json()["__type"]) == (400, "UnknownOperationException")


def test_logs_unknown_group_is_resource_not_found(server) -> None:
    logs = server.client("logs")
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as excinfo:
        logs.describe_log_streams(logGroupName="/forklift/no-such-group", logStreamNamePrefix="job-1/")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName="/forklift/no-such-group", logStreamName="job-1/algo-1-0")


def test_logs_validation_uses_invalid_parameter(server) -> None:
    logs = server.client("logs")
    with pytest.raises(ClientError) as excinfo:
        logs.describe_log_streams(logGroupName="bad group!")
    assert error_of(excinfo)[:2] == (
        "InvalidParameterException",
        "1 validation error detected: Value 'bad group!' at 'logGroupName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")


def test_invoke_unknown_endpoint(server) -> None:
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="missing-endpoint", Body=b'{"x": 1}', ContentType="application/json")
    assert error_of(excinfo) == (
        "ValidationError", "Endpoint missing-endpoint of account 000000000000 not found.", 400)
    assert excinfo.value.response["ResponseMetadata"]["RequestId"]


def test_invoke_payload_over_6_mib(server) -> None:
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="any-endpoint", Body=b"x" * 7_000_000)
    assert error_of(excinfo) == (
        "ValidationError",
        "1 validation error detected: Value at 'body' failed to satisfy constraint: "
        "Member must have length less than or equal to 6291456",
        400)


def test_invoke_bad_endpoint_name(server) -> None:
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="bad_name", Body=b"{}")
    code, message, _ = error_of(excinfo)
    assert code == "ValidationError"
    assert message.startswith("1 validation error detected: Value 'bad_name' at 'endpointName'")


def test_unknown_route_is_aws_shaped(server) -> None:
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sagemaker/aws4_request, "
                               "SignedHeaders=host, Signature=00"}
    response = httpx.get(server.url + "/nope", headers=signed, timeout=5)
    assert response.status_code == 404
    assert response.json()["__type"] == "UnknownOperationException"
    assert response.headers["x-amzn-RequestId"]
    unsigned = httpx.get(server.url + "/nope", timeout=5)  # any other unsigned route is S3's: bucket "nope"
    assert unsigned.status_code == 404 and b"<Code>NoSuchBucket</Code>" in unsigned.content


def test_account_option_and_server_json_removed_at_exit(launch, stop) -> None:
    second = launch("--region", "eu-west-1", "--account", "123456789012")
    runtime = second.client("sagemaker-runtime", region="eu-west-1")
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="e", Body=b"{}")
    assert "of account 123456789012 not found" in error_of(excinfo)[1]
    assert (second.home / "server.json").exists()
    stderr = stop(second)
    assert second.process.returncode == 0
    assert f"forklift serving on {second.url} (region eu-west-1, account 123456789012)" in stderr
    assert not (second.home / "server.json").exists()


def test_second_server_on_same_home_refuses(server) -> None:
    env = {**os.environ, "FORKLIFT_HOME": str(server.home)}
    result = subprocess.run([sys.executable, "-m", "forklift", "serve", "--port", "0"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert "already running" in result.stderr
    assert json.loads((server.home / "server.json").read_text())["pid"] == server.process.pid
