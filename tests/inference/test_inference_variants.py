"""Two production variants: traffic split by weight, TargetVariant, and
UpdateEndpointWeightsAndCapacities."""

from __future__ import annotations

from collections import Counter

import pytest
from inference_support import create_config, create_model, predict, unique, wait_status


@pytest.fixture(scope="module")
def two_variants(server, inference_image) -> str:
    sm = server.client("sagemaker")
    a = create_model(sm, server, inference_image, version="a")
    b = create_model(sm, server, inference_image, version="b")
    name = unique("split")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("VariantA", a, 2, 0.7),
                                                                                ("VariantB", b, 1, 0.3)]))
    assert wait_status(sm, name)["EndpointStatus"] == "InService"
    return name


def test_weights_split_traffic_70_30(runtime_client, two_variants):
    seen = Counter()
    for _ in range(1000):
        answer = predict(runtime_client, two_variants, [[1, 1]])
        assert answer["version"] == {"VariantA": "a", "VariantB": "b"}[answer["variant"]]
        seen[answer["variant"]] += 1
    assert 650 <= seen["VariantA"] <= 750, seen
    assert 250 <= seen["VariantB"] <= 350, seen


def test_target_variant_overrides_the_weights(runtime_client, two_variants):
    for _ in range(20):
        assert predict(runtime_client, two_variants, [[0, 0]], TargetVariant="VariantB")["variant"] == "VariantB"


def test_instances_of_a_variant_take_turns(runtime_client, two_variants):
    hostnames = {predict(runtime_client, two_variants, [[0, 0]], TargetVariant="VariantA")["hostname"]
                 for _ in range(6)}
    assert len(hostnames) == 2


def test_describe_reports_both_variants(sagemaker, two_variants):
    variants = {v["VariantName"]: v for v in sagemaker.describe_endpoint(EndpointName=two_variants)
                ["ProductionVariants"]}
    assert variants["VariantA"]["CurrentWeight"] == pytest.approx(0.7)
    assert variants["VariantA"]["CurrentInstanceCount"] == 2
    assert variants["VariantB"]["DesiredInstanceCount"] == 1


def test_update_weights_and_capacities(sagemaker, runtime_client, two_variants):
    sagemaker.update_endpoint_weights_and_capacities(EndpointName=two_variants, DesiredWeightsAndCapacities=[
        {"VariantName": "VariantA", "DesiredWeight": 0.0, "DesiredInstanceCount": 1},
        {"VariantName": "VariantB", "DesiredWeight": 1.0, "DesiredInstanceCount": 2}])
    endpoint = wait_status(sagemaker, two_variants, until=("InService",))
    variants = {v["VariantName"]: v for v in endpoint["ProductionVariants"]}
    assert variants["VariantA"]["CurrentInstanceCount"] == 1
    assert variants["VariantB"]["CurrentInstanceCount"] == 2
    assert variants["VariantB"]["CurrentWeight"] == 1.0
    assert {predict(runtime_client, two_variants, [[0, 0]])["variant"] for _ in range(20)} == {"VariantB"}
