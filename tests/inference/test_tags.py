"""Tags on models, endpoint configurations and endpoints, through boto3 against a real `forklift serve`:
the Tags given at create time, AddTags (overwriting a key, 50 at most, no `aws:` keys), ListTags in the
order keys were first added, DeleteTags, and a resource's tags gone with it; and each Describe* held to
botocore's output shape and the members the SageMaker Python SDK indexes."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from inference_support import create_config, create_model, unique, wait_status

from fixtures.describeshapes import problems


@pytest.fixture(scope="module")
def server(server_on_both_engines):
    return server_on_both_engines


def tags(*pairs: tuple[str, str]) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in pairs]


def refusal(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def listed(sm, arn: str) -> list[dict]:
    return [tag for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn) for tag in page["Tags"]]


def test_a_models_tags_round_trip_and_go_with_it(sagemaker, server, inference_image):
    name = create_model(sagemaker, server, inference_image)
    model = sagemaker.describe_model(ModelName=name)
    assert problems("DescribeModel", model) == []
    assert model["EnableNetworkIsolation"] is False and model["PrimaryContainer"]["Mode"] == "SingleModel"
    arn = model["ModelArn"]
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == []

    assert sagemaker.add_tags(ResourceArn=arn, Tags=tags(("b", "1"), ("a", "2")))["Tags"] == tags(("b", "1"),
                                                                                                  ("a", "2"))
    sagemaker.add_tags(ResourceArn=arn, Tags=tags(("c", "3"), ("b", "overwritten")))
    assert listed(sagemaker, arn) == tags(("b", "overwritten"), ("a", "2"), ("c", "3"))
    sagemaker.delete_tags(ResourceArn=arn, TagKeys=["a", "never-there"])
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == tags(("b", "overwritten"), ("c", "3"))
    sagemaker.add_tags(ResourceArn=arn, Tags=tags(("a", "back")))  # a deleted key comes back last
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == tags(("b", "overwritten"), ("c", "3"), ("a", "back"))

    sagemaker.delete_model(ModelName=name)
    code, message = refusal(lambda: sagemaker.list_tags(ResourceArn=arn))
    assert code == "ValidationException" and f"Resource {arn} does not exist" in message
    code, _ = refusal(lambda: sagemaker.add_tags(ResourceArn=arn, Tags=tags(("x", "y"))))
    assert code == "ValidationException"


def test_tags_given_at_create_are_listed_and_a_name_used_again_starts_without_them(sagemaker, server,
                                                                                    inference_image):
    name = create_model(sagemaker, server, inference_image)
    config = unique("config")
    given = tags(("owner", "ml"), ("stage", "dev"))
    sagemaker.create_endpoint_config(EndpointConfigName=config, Tags=given, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}])
    described = sagemaker.describe_endpoint_config(EndpointConfigName=config)
    assert problems("DescribeEndpointConfig", described) == []
    arn = described["EndpointConfigArn"]
    assert arn.endswith(f":endpoint-config/{config.lower()}")
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == given
    prefix, resource = arn.rsplit(":", 1)
    # names are lower-cased in ARNs: a name written in capitals names the same resource
    assert sagemaker.list_tags(ResourceArn=f"{prefix}:{resource.upper()}")["Tags"] == given
    sagemaker.delete_endpoint_config(EndpointConfigName=config)
    sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}])
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == []
    sagemaker.delete_endpoint_config(EndpointConfigName=config)


def test_fifty_tags_at_most_and_no_aws_keys(sagemaker, server, inference_image):
    name = create_model(sagemaker, server, inference_image)
    arn = sagemaker.describe_model(ModelName=name)["ModelArn"]
    fifty = tags(*((f"k{i:02d}", str(i)) for i in range(50)))
    sagemaker.add_tags(ResourceArn=arn, Tags=fifty)
    sagemaker.add_tags(ResourceArn=arn, Tags=tags(("k00", "again")))  # an overwrite adds none
    code, message = refusal(lambda: sagemaker.add_tags(ResourceArn=arn, Tags=tags(("one-more", "x"))))
    assert code == "ResourceLimitExceeded"
    assert "51 tags, more than the 50" in message and "DeleteTags" in message
    page = sagemaker.list_tags(ResourceArn=arn, MaxResults=50)
    assert "NextToken" not in page and [t["Key"] for t in page["Tags"]] == [t["Key"] for t in fifty]
    assert page["Tags"][0] == {"Key": "k00", "Value": "again"}
    code, message = refusal(lambda: sagemaker.list_tags(ResourceArn=arn, NextToken="not-a-token"))
    assert code == "ValidationException" and "NextToken" in message

    code, message = refusal(lambda: sagemaker.add_tags(ResourceArn=arn, Tags=tags(("AWS:owner", "me"))))
    assert code == "ValidationException"
    assert "'AWS:owner' in Tags starts with 'aws:', which is reserved for AWS" in message
    taken = unique("model")
    code, message = refusal(lambda: sagemaker.create_model(
        ModelName=taken, PrimaryContainer=sagemaker.describe_model(ModelName=name)["PrimaryContainer"],
        Tags=tags(("aws:cloudformation:stack", "s"))))
    assert code == "ValidationException" and "aws:cloudformation:stack" in message
    assert refusal(lambda: sagemaker.describe_model(ModelName=taken))[0] == "ValidationException"  # not created
    sagemaker.delete_model(ModelName=name)


def test_an_endpoints_tags_go_when_it_is_deleted(sagemaker, server, inference_image):
    model = create_model(sagemaker, server, inference_image)
    config = create_config(sagemaker, [("AllTraffic", model, 1, 1.0)])
    name = unique("endpoint")
    arn = sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config,
                                    Tags=tags(("app", "pricing")))["EndpointArn"]
    assert problems("DescribeEndpoint", sagemaker.describe_endpoint(EndpointName=name)) == []
    endpoint = wait_status(sagemaker, name)
    assert endpoint["EndpointStatus"] == "InService", endpoint
    assert problems("DescribeEndpoint", endpoint) == []
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == tags(("app", "pricing"))
    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    code, _ = refusal(lambda: sagemaker.list_tags(ResourceArn=arn))
    assert code == "ValidationException"
