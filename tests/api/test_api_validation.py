"""The validator against botocore's models: valid botocore-serialized requests pass, mutations fail
with AWS's wording."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from botocore.serialize import create_serializer
from botocore.validate import ParamValidator

from forklift.api.errors import ApiError
from forklift.api.validation import operation_model, validate

ROLE = "arn:aws:iam::123456789012:role/service-role/SageMakerRole"
IMAGE = "registry.example.com:5000/team/algo@sha256:" + "a" * 64
TAGS = [{"Key": "team", "Value": "ml platform"}, {"Key": "cost-center", "Value": "42"}]
VARIANT = {"VariantName": "AllTraffic", "ModelName": "model-1", "InitialInstanceCount": 1,
           "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1.0}
LIST = {"MaxResults": 10, "NextToken": "token", "NameContains": "job", "SortOrder": "Descending",
        "CreationTimeAfter": datetime(2024, 1, 1, tzinfo=UTC), "SortBy": "CreationTime"}

EXAMPLES = {
    "CreateTrainingJob": {
        "TrainingJobName": "xgboost-2024-01-01-00-00-00-001",
        "HyperParameters": {"max_depth": "5", "sagemaker_program": '"train.py"', "eta": "0.2"},
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                   "MetricDefinitions": [{"Name": "train:loss", "Regex": "loss=([0-9.]+)"}],
                                   "TrainingImageConfig": {
                                       "TrainingRepositoryAccessMode": "Vpc",
                                       "TrainingRepositoryAuthConfig": {
                                           "TrainingRepositoryCredentialsProviderArn":
                                               "arn:aws:lambda:us-east-1:123456789012:function:creds"}}},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train/", "S3DataDistributionType": "FullyReplicated"}},
             "ContentType": "text/csv", "CompressionType": "None", "InputMode": "FastFile"},
            {"ChannelName": "validation", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://bucket/validation/"}}},
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
        "VpcConfig": {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 90000},
        "Tags": TAGS,
        "EnableNetworkIsolation": False,
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": "s3://bucket/checkpoints", "LocalPath": "/opt/ml/checkpoints"},
        "Environment": {"LOG_LEVEL": "debug", "_PRIVATE": "1"},
        "RetryStrategy": {"MaximumRetryAttempts": 3},
    },
    "DescribeTrainingJob": {"TrainingJobName": "job-1"},
    "ListTrainingJobs": {**LIST, "StatusEquals": "Completed",
                         "LastModifiedTimeBefore": datetime(2030, 1, 1, tzinfo=UTC)},
    "StopTrainingJob": {"TrainingJobName": "job-1"},
    "CreateModel": {
        "ModelName": "model-1",
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": "s3://bucket/output/job-1/output/model.tar.gz",
                             "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "EMPTY": ""},
                             "ImageConfig": {"RepositoryAccessMode": "Vpc", "RepositoryAuthConfig": {
                                 "RepositoryCredentialsProviderArn": "arn:aws:lambda:us-east-1:1:function:x"}},
                             "Mode": "SingleModel"},
        "ExecutionRoleArn": ROLE,
        "Tags": TAGS,
        "EnableNetworkIsolation": True,
    },
    "DescribeModel": {"ModelName": "model-1"},
    "ListModels": {**LIST, "SortBy": "Name", "SortOrder": "Ascending"},
    "DeleteModel": {"ModelName": "model-1"},
    "CreateEndpointConfig": {
        "EndpointConfigName": "config-1",
        "ProductionVariants": [VARIANT, {**VARIANT, "VariantName": "canary", "InitialVariantWeight": 0.1,
                                         "ContainerStartupHealthCheckTimeoutInSeconds": 600}],
        "Tags": TAGS,
    },
    "DescribeEndpointConfig": {"EndpointConfigName": "config-1"},
    "ListEndpointConfigs": {**LIST, "SortBy": "Name"},
    "DeleteEndpointConfig": {"EndpointConfigName": "config-1"},
    "CreateEndpoint": {"EndpointName": "endpoint-1", "EndpointConfigName": "config-1", "Tags": TAGS},
    "DescribeEndpoint": {"EndpointName": "endpoint-1"},
    "ListEndpoints": {**LIST, "StatusEquals": "InService", "SortBy": "Status"},
    "UpdateEndpoint": {"EndpointName": "endpoint-1", "EndpointConfigName": "config-2",
                       "RetainAllVariantProperties": True,
                       "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredInstanceCount"}]},
    "UpdateEndpointWeightsAndCapacities": {
        "EndpointName": "endpoint-1",
        "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredWeight": 0.5,
                                         "DesiredInstanceCount": 2}]},
    "DeleteEndpoint": {"EndpointName": "endpoint-1"},
}


def wire(operation: str, params: dict) -> dict:
    """What boto3 puts on the wire for `params` (after its own client-side validation)."""
    op = operation_model("sagemaker", operation)
    report = ParamValidator().validate(params, op.input_shape)
    assert not report.has_errors(), report.generate_report()
    request = create_serializer("json").serialize_to_request(params, op)
    return json.loads(request["body"] or b"{}")


def message(operation: str, body: dict, service: str = "sagemaker") -> str:
    with pytest.raises(ApiError) as excinfo:
        validate(service, operation, body)
    assert excinfo.value.code == "ValidationException" or service != "sagemaker"
    return excinfo.value.message


@pytest.mark.parametrize("operation", sorted(EXAMPLES))
def test_botocore_serialized_example_passes(operation: str) -> None:
    body = wire(operation, EXAMPLES[operation])
    result = validate("sagemaker", operation, body)
    assert set(result) == set(EXAMPLES[operation])


@pytest.mark.parametrize("operation", sorted(EXAMPLES))
def test_every_required_member_is_reported_missing(operation: str) -> None:
    body = wire(operation, EXAMPLES[operation])
    required = operation_model("sagemaker", operation).input_shape.required_members
    for name in required:
        broken = {k: v for k, v in body.items() if k != name}
        camel = name[0].lower() + name[1:]
        assert message(operation, broken) == (
            f"1 validation error detected: Value null at '{camel}' failed to satisfy constraint: "
            "Member must not be null")
    if len(required) > 1:
        assert message(operation, {}).startswith(f"{len(required)} validation errors detected: Value null at '")


@pytest.mark.parametrize("operation", sorted(EXAMPLES))
def test_every_top_level_constraint_is_enforced(operation: str) -> None:
    """Break each top-level string member (pattern, enum, max length) and number (max) in turn."""
    body = wire(operation, EXAMPLES[operation])
    members = operation_model("sagemaker", operation).input_shape.members
    checked = 0
    for name, shape in members.items():
        camel = name[0].lower() + name[1:]
        meta = shape.metadata
        if shape.type_name == "string" and getattr(shape, "enum", None):
            bad, expected = "Bogus", f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
        elif shape.type_name == "string" and "pattern" in meta and meta["pattern"] not in (".*", "[\\S\\s]*"):
            bad, expected = "!! ~", f"Member must satisfy regular expression pattern: {meta['pattern']}"
        elif shape.type_name == "string" and "max" in meta:
            bad, expected = "a" * (meta["max"] + 1), f"Member must have length less than or equal to {meta['max']}"
        elif shape.type_name == "integer" and "max" in meta:
            bad, expected = meta["max"] + 1, f"Member must have value less than or equal to {meta['max']}"
        else:
            continue
        text = message(operation, {**body, name: bad})
        assert f"Value '{bad}' at '{camel}' failed to satisfy constraint: {expected}" in text, text
        checked += 1
    assert checked, f"{operation}: no constraint exercised"


@pytest.mark.parametrize(("operation", "path", "value", "expected"), [
    ("CreateTrainingJob", ["AlgorithmSpecification", "TrainingInputMode"], "Bogus",
     "Value 'Bogus' at 'algorithmSpecification.trainingInputMode' failed to satisfy constraint: "
     "Member must satisfy enum value set: [Pipe, FastFile, File]"),
    ("CreateTrainingJob", ["InputDataConfig", 1, "ChannelName"], "a/b",
     "Value 'a/b' at 'inputDataConfig.2.member.channelName' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [A-Za-z0-9\\.\\-_]+"),
    ("CreateTrainingJob", ["InputDataConfig", 0, "DataSource", "S3DataSource", "S3DataType"], "Folder",
     "Value 'Folder' at 'inputDataConfig.1.member.dataSource.s3DataSource.s3DataType' failed to satisfy "
     "constraint: Member must satisfy enum value set: [ManifestFile, S3Prefix, AugmentedManifestFile, Converse]"),
    ("CreateTrainingJob", ["StoppingCondition", "MaxRuntimeInSeconds"], 0,
     "Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: "
     "Member must have value greater than or equal to 1"),
    ("CreateTrainingJob", ["ResourceConfig", "KeepAlivePeriodInSeconds"], 21601,
     "Value '21601' at 'resourceConfig.keepAlivePeriodInSeconds' failed to satisfy constraint: "
     "Member must have value less than or equal to 21600"),
    ("CreateTrainingJob", ["RetryStrategy", "MaximumRetryAttempts"], 31,
     "Value '31' at 'retryStrategy.maximumRetryAttempts' failed to satisfy constraint: "
     "Member must have value less than or equal to 30"),
    ("CreateTrainingJob", ["VpcConfig", "Subnets", 0], "subnet_bad",
     "Value 'subnet_bad' at 'vpcConfig.subnets.1.member' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [-0-9a-zA-Z]+"),
    ("CreateTrainingJob", ["VpcConfig", "Subnets"], [],
     "Value '[]' at 'vpcConfig.subnets' failed to satisfy constraint: "
     "Member must have length greater than or equal to 1"),
    ("CreateTrainingJob", ["Tags", 1, "Key"], "",
     "Value '' at 'tags.2.member.key' failed to satisfy constraint: "
     "Member must have length greater than or equal to 1"),
    ("CreateTrainingJob", ["AlgorithmSpecification", "TrainingImageConfig", "TrainingRepositoryAuthConfig",
                           "TrainingRepositoryCredentialsProviderArn"], "arn:aws:lambda:us-east-1:123:function:x",
     "Value 'arn:aws:lambda:us-east-1:123:function:x' at 'algorithmSpecification.trainingImageConfig."
     "trainingRepositoryAuthConfig.trainingRepositoryCredentialsProviderArn' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: "
     "arn:[\\p{Alnum}\\-]+:lambda:[\\p{Alnum}\\-]+:[0-9]{12}:function:.*"),
    ("CreateTrainingJob", ["Environment"], {"1BAD": "x"},
     "Value '{1BAD=x}' at 'environment' failed to satisfy constraint: Map keys must satisfy constraint: "
     "[Member must have length less than or equal to 512, Member must have length greater than or equal to 0, "
     "Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]*]"),
    ("CreateTrainingJob", ["HyperParameters"], {"k": "v" * 2501},
     "at 'hyperParameters' failed to satisfy constraint: Map value must satisfy constraint: "
     "[Member must have length less than or equal to 2500, Member must have length greater than or equal to 0, "
     "Member must satisfy regular expression pattern: .*]"),
    ("CreateEndpointConfig", ["ProductionVariants", 1, "InitialVariantWeight"], -0.5,
     "Value '-0.5' at 'productionVariants.2.member.initialVariantWeight' failed to satisfy constraint: "
     "Member must have value greater than or equal to 0.0"),
    ("CreateEndpointConfig", ["ProductionVariants", 0, "InstanceType"], "ml.t9.medium",
     "Value 'ml.t9.medium' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: "
     "Member must satisfy enum value set: ["),
    ("CreateEndpointConfig", ["ProductionVariants", 0, "InstanceType"], "ml.t9.medium",
     " values of ProductionVariantInstanceType]; did you mean ml.t2.medium or "),
    ("CreateTrainingJob", ["ResourceConfig", "InstanceType"], "ml.m5.larg",
     " values of TrainingInstanceType]; did you mean ml.m5.large or "),
    ("CreateModel", ["PrimaryContainer", "Image"], "has space",
     "Value 'has space' at 'primaryContainer.image' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [\\S]+"),
    ("UpdateEndpoint", ["ExcludeRetainedVariantProperties", 0, "VariantPropertyType"], "Weight",
     "Value 'Weight' at 'excludeRetainedVariantProperties.1.member.variantPropertyType' failed to satisfy "
     "constraint: Member must satisfy enum value set: [DesiredInstanceCount, DesiredWeight, DataCaptureConfig]"),
    ("UpdateEndpointWeightsAndCapacities", ["DesiredWeightsAndCapacities", 0, "VariantName"], None,
     "Value null at 'desiredWeightsAndCapacities.1.member.variantName' failed to satisfy constraint: "
     "Member must not be null"),
    ("ListModels", ["NameContains"], "a" * 64,
     "failed to satisfy constraint: Member must have length less than or equal to 63"),
])
def test_targeted_mutation(operation: str, path: list, value, expected: str) -> None:
    body = copy.deepcopy(wire(operation, EXAMPLES[operation]))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    text = message(operation, body)
    assert text.startswith("1 validation error detected: ")
    assert expected in text


def test_violations_are_all_collected() -> None:
    body = wire("CreateTrainingJob", EXAMPLES["CreateTrainingJob"])
    body.update(TrainingJobName="x_y", RoleArn="nope" * 6, Tags=[{"Key": "", "Value": "v"}])
    del body["OutputDataConfig"]
    text = message("CreateTrainingJob", body)
    assert text.startswith("4 validation errors detected: ")
    assert text.count("; Value ") == 3


def test_unknown_members_are_ignored_and_dropped() -> None:
    result = validate("sagemaker", "DescribeTrainingJob", {"TrainingJobName": "job-1", "Bogus": {"x": 1},
                                                         "trainingJobName": "!!"})
    assert result == {"TrainingJobName": "job-1"}


def test_values_are_typed_for_handlers() -> None:
    iso = validate("sagemaker", "ListTrainingJobs", {"CreationTimeAfter": "2024-01-01T00:00:00Z",
                                                     "CreationTimeBefore": 1704067200.5, "MaxResults": 10.0})
    assert iso["CreationTimeAfter"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert iso["CreationTimeBefore"] == datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert iso["MaxResults"] == 10 and isinstance(iso["MaxResults"], int)


@pytest.mark.parametrize(("body", "expected"), [
    ({"MaxResults": "10"}, "STRING_VALUE can not be converted to an Integer"),
    ({"MaxResults": True}, "TRUE_VALUE can not be converted to an Integer"),
    ({"MaxResults": 2**31}, "NUMBER_VALUE can not be converted to an Integer"),
    ({"NameContains": 5}, "NUMBER_VALUE can not be converted to an String"),
    ({"NameContains": {"a": 1}}, "Start of structure or map found where not expected."),
    ({"NameContains": ["a"]}, "Start of list found where not expected"),
    ({"CreationTimeAfter": "yesterday"}, "STRING_VALUE can not be converted to an Date"),
    ([], "Start of list found where not expected"),
])
def test_wrong_json_types_are_serialization_errors(body, expected: str) -> None:
    with pytest.raises(ApiError) as excinfo:
        validate("sagemaker", "ListTrainingJobs", body)
    assert (excinfo.value.code, excinfo.value.message) == ("SerializationException", expected)


def test_sensitive_values_are_never_echoed() -> None:
    with pytest.raises(ApiError) as excinfo:
        validate("sagemaker-runtime", "InvokeEndpoint",
                 {"EndpointName": "e", "Body": b"secret", "CustomAttributes": "tok=s3cr3t\u00e9"},
                 error_code="ValidationError")
    assert excinfo.value.code == "ValidationError"
    assert excinfo.value.message == (
        "1 validation error detected: Value at 'customAttributes' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: \\p{ASCII}*")
    assert "s3cr3t" not in excinfo.value.message


def test_blob_length_and_base64() -> None:
    ok = validate("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "e", "Body": "aGVsbG8="},
                  error_code="ValidationError")
    assert ok["Body"] == b"hello"
    with pytest.raises(ApiError) as excinfo:
        validate("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "e", "Body": "not base64!"})
    assert excinfo.value.code == "SerializationException"


def test_logs_model_is_validated_too() -> None:
    with pytest.raises(ApiError) as excinfo:
        validate("logs", "GetLogEvents", {"logGroupName": "/aws/sagemaker/TrainingJobs", "limit": 0},
                 error_code="InvalidParameterException")
    assert (excinfo.value.code, excinfo.value.message) == (
        "InvalidParameterException",
        "2 validation errors detected: Value null at 'logStreamName' failed to satisfy constraint: "
        "Member must not be null; Value '0' at 'limit' failed to satisfy constraint: Member must have value "
        "greater than or equal to 1")


def test_unknown_operation() -> None:
    with pytest.raises(ApiError) as excinfo:
        validate("sagemaker", "LaunchRocket", {})
    assert excinfo.value.code == "UnknownOperationException"


def test_an_enormous_refused_value_is_echoed_only_in_part() -> None:
    # Found by the hostile corpus: a 1 MiB name came back whole in the message (and the server log).
    with pytest.raises(ApiError) as excinfo:
        validate("sagemaker", "DescribeTrainingJob", {"TrainingJobName": "a" * (1 << 20)})
    message = excinfo.value.message
    assert len(message) < 2 * 17_000  # two violations: its length and its pattern
    assert f"Value '{'a' * 16384}... ({1 << 20} characters)' at 'trainingJobName'" in message
