"""UpdateEndpoint: the new fleet starts, traffic shifts once it is healthy, the old one drains and
stops, and requests sent all the while never fail."""

from __future__ import annotations

import threading

import pytest
from inference_support import calling_continuously, create_config, create_model, deploy, predict, wait_status


@pytest.fixture(scope="module")
def server(server_on_both_engines):
    """This module's tests run on SQLite and on PostgreSQL."""
    return server_on_both_engines


def test_update_endpoint_without_failed_requests(server, sagemaker, runtime_client, inference_image):
    name = deploy(sagemaker, server, inference_image, version="v1")
    new_model = create_model(sagemaker, server, inference_image, weights=(10.0, 10.0), bias=0.0, version="v2")
    new_config = create_config(sagemaker, [("Blue", new_model, 2, 1.0)])
    with calling_continuously(server.client("sagemaker-runtime"), name) as (answers, errors):
        sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
        assert sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"
        endpoint = wait_status(sagemaker, name, until=("InService",))
        # keep calling a little after the switch, while the old instance is drained and stopped
        seen_after = len(answers)
        while len(answers) < seen_after + 50:
            threading.Event().wait(0.05)
    assert errors == []
    assert endpoint["EndpointConfigName"] == new_config
    assert endpoint.get("FailureReason") is None
    versions = [a["version"] for a in answers]
    assert versions[0] == "v1" and versions[-1] == "v2"
    answer = predict(runtime_client, name, [[1, 1]])
    assert answer["variant"] == "Blue" and answer["predictions"] == [20.0]
    (variant,) = endpoint["ProductionVariants"]
    assert variant["VariantName"] == "Blue" and variant["CurrentInstanceCount"] == 2


def test_failed_update_keeps_the_old_fleet_serving(server, sagemaker, runtime_client, inference_image):
    name = deploy(sagemaker, server, inference_image, version="v1")
    old_config = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    broken = create_model(sagemaker, server, inference_image, environment={"MODE": "crash"})
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=create_config(sagemaker, [("B", broken, 1, 1.0)]))
    endpoint = wait_status(sagemaker, name, until=("InService",))
    assert endpoint["EndpointConfigName"] == old_config
    assert "exited with code 3" in endpoint["FailureReason"]
    assert predict(runtime_client, name, [[1, 1]])["version"] == "v1"


def test_endpoint_deleted_while_creating(server, sagemaker, inference_image):
    model = create_model(sagemaker, server, inference_image, environment={"MODE": "never-ready"})
    name = "deleted-while-creating-" + model[-8:]
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sagemaker, [("A", model, 1, 1.0)]))
    assert sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"
    with pytest.raises(sagemaker.exceptions.ClientError) as excinfo:
        sagemaker.update_endpoint(EndpointName=name,
                                  EndpointConfigName=create_config(sagemaker, [("B", model, 1, 1.0)]))
    assert "Cannot update in-progress endpoint" in excinfo.value.response["Error"]["Message"]
    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
