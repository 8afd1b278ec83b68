"""List*/Delete* of models, endpoint configs and endpoints: filters, sort, pagination, and what a
delete leaves behind."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from inference_support import create_config, create_model, deploy, unique


def test_list_models_and_configs_with_pagination(sagemaker, server, inference_image):
    tag = unique("lst")
    models = []
    for i in range(3):
        name = f"{tag}-m{i}"
        sagemaker.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/R",
                               VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
                               PrimaryContainer={"Image": inference_image, "ImageConfig": {
                                   "RepositoryAccessMode": "Vpc", "RepositoryAuthConfig": {
                                       "RepositoryCredentialsProviderArn":
                                           "arn:aws:lambda:us-east-1:000000000000:function:registry-creds"}}})
        models.append(name)
    pages = list(sagemaker.get_paginator("list_models").paginate(
        NameContains=tag, SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 2}))
    assert [len(p["Models"]) for p in pages] == [2, 1]
    assert [m["ModelName"] for p in pages for m in p["Models"]] == models

    config = create_config(sagemaker, [("A", models[0], 1, 1.0)])
    listed = sagemaker.list_endpoint_configs(NameContains=config)["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in listed] == [config]
    described = sagemaker.describe_endpoint_config(EndpointConfigName=config)
    assert described["ProductionVariants"][0]["ModelName"] == models[0]
    sagemaker.delete_endpoint_config(EndpointConfigName=config)
    sagemaker.delete_model(ModelName=models[0])
    with pytest.raises(ClientError):
        sagemaker.describe_model(ModelName=models[0])
    assert [m["ModelName"] for m in sagemaker.list_models(NameContains=tag)["Models"]] == models[:0:-1]


def test_create_rules(sagemaker, server, inference_image):
    model = create_model(sagemaker, server, inference_image)
    with pytest.raises(ClientError) as excinfo:
        create_model_again = {"ModelName": model, "ExecutionRoleArn": "arn:aws:iam::123456789012:role/R",
                              "PrimaryContainer": {"Image": inference_image}}
        sagemaker.create_model(**create_model_again)
    assert "already existing" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        create_config(sagemaker, [("A", "no-such-model", 1, 1.0)])
    assert "Could not find model" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        sagemaker.create_endpoint(EndpointName=unique("e"), EndpointConfigName="no-such-config")
    assert "Could not find endpoint configuration" in excinfo.value.response["Error"]["Message"]


def test_list_endpoints_filters_by_status_and_name(sagemaker, server, inference_image):
    name = deploy(sagemaker, server, inference_image)
    in_service = sagemaker.list_endpoints(StatusEquals="InService", NameContains=name)["Endpoints"]
    assert [e["EndpointName"] for e in in_service] == [name]
    assert sagemaker.list_endpoints(StatusEquals="Failed", NameContains=name)["Endpoints"] == []
    with pytest.raises(ClientError) as excinfo:
        sagemaker.update_endpoint(EndpointName=name, EndpointConfigName="no-such-config")
    assert "Could not find endpoint configuration" in excinfo.value.response["Error"]["Message"]
    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    assert not list((server.home / "endpoints" / name / "instances").glob("*/pid")) or all(
        (p.parent / "exit.json").exists() for p in (server.home / "endpoints" / name / "instances").glob("*/pid"))
