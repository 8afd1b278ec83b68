"""AWS's documented private-registry inference code, unchanged, against `forklift serve`: the image
comes from a TLS registry that requires auth, the credentials from a registered provider function;
the endpoint reaches InService through boto3's own waiter and `invoke_endpoint` predicts."""

from __future__ import annotations

import json

import pytest
from inference_support import ROLE, VPC, function_arn, model_tarball, unique


@pytest.fixture(scope="module")
def server(server_on_both_engines):
    """This module's tests run on SQLite and on PostgreSQL."""
    return server_on_both_engines


def test_documented_private_registry_inference_flow(server, sagemaker, runtime_client, inference_image):
    model_name = unique("vpc-model")
    model_data = model_tarball(server.home, model_name, {"weights": [2.0, 3.0], "bias": 1.0, "version": "v1"})

    # --- the documented code, with the image, names, provider ARN and model data filled in ----------
    image_config = {
                        'RepositoryAccessMode': 'Vpc',
                        'RepositoryAuthConfig': {
                           'RepositoryCredentialsProviderArn': function_arn("registry-creds")
                         }
                   }
    primary_container = {
        'ContainerHostname': 'ModelContainer',
        'Image': inference_image,
        'ImageConfig': image_config,
        'ModelDataUrl': model_data,
    }
    execution_role_arn = ROLE
    vpc_config = VPC
    sm = sagemaker
    try:
        resp = sm.create_model(
            ModelName=model_name,
            PrimaryContainer=primary_container,
            ExecutionRoleArn=execution_role_arn,
            VpcConfig=vpc_config,
        )
    except Exception as e:
        print(f'error calling CreateModel operation: {e}')
        raise
    else:
        print(resp)

    endpoint_config_name = unique('my-endpoint-config')
    sm.create_endpoint_config(
        EndpointConfigName=endpoint_config_name,
        ProductionVariants=[
            {
                'VariantName': 'MyVariant',
                'ModelName': model_name,
                'InitialInstanceCount': 1,
                'InstanceType': 'ml.t2.medium'
            },
        ],
    )

    endpoint_name = unique('my-endpoint')
    sm.create_endpoint(
        EndpointName=endpoint_name,
        EndpointConfigName=endpoint_config_name,
    )

    sm.describe_endpoint(EndpointName=endpoint_name)
    # -------------------------------------------------------------------------------------------------
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint_name, WaiterConfig={"Delay": 1})

    endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == endpoint_config_name
    (variant,) = endpoint["ProductionVariants"]
    assert variant["VariantName"] == "MyVariant"
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 1
    assert variant["CurrentWeight"] == 1.0
    (deployed,) = variant["DeployedImages"]
    assert deployed["SpecifiedImage"] == inference_image
    assert deployed["ResolvedImage"].startswith(inference_image.rsplit(":", 1)[0] + "@sha256:")
    assert "ResolutionTime" in deployed

    model = sm.describe_model(ModelName=model_name)
    assert model["PrimaryContainer"]["Image"] == inference_image
    assert model["ExecutionRoleArn"] == ROLE

    response = runtime_client.invoke_endpoint(EndpointName=endpoint_name, Body=json.dumps([[1, 1], [2, 0]]),
                                              ContentType="application/json", Accept="application/json")
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "MyVariant"
    answer = json.loads(response["Body"].read())
    assert answer["predictions"] == [6.0, 5.0]
    assert answer["hostname"] == "ModelContainer"

    sm.delete_endpoint(EndpointName=endpoint_name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint_name, WaiterConfig={"Delay": 1})
