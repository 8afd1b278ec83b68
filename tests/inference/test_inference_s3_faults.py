"""An endpoint whose model data (ModelDataUrl on s3://) comes from an S3 endpoint that breaks: a cut
connection and a burst of 503s are ridden out and the endpoint serves; a stall that does not end
fails the endpoint with a reason that names the model data and says it stalled, within config.toml's waits.

A real `forklift serve` reaches a real S3 server (moto) only through a fault-injecting proxy.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator

import boto3
import pytest
from inference_support import (
    CONFIG_TOML,
    ROLE,
    VPC,
    create_config,
    function_arn,
    predict,
    prepare_home,
    unique,
    wait_status,
)

from fixtures.motoserver import MotoServer
from fixtures.s3faultproxy import S3FaultProxy
from fixtures.serve import CREDENTIALS, ServeProcess, remove_containers

BUCKET = "fault-models"
MODEL_PATH = f"/{BUCKET}/m/model.tar.gz"
MODEL_URL = f"s3:/{MODEL_PATH}"
WAITS = "registry_connect_timeout_seconds = 2\nregistry_read_timeout_seconds = 2\nregistry_retry_seconds = 6\n"
ENDED = 120.0  # generous: with boto3's own waits a stall took minutes


def model_archive() -> bytes:
    """model.json for the test's model server, and 2 MiB of padding, so a GET can be cut mid-way."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("model.json", json.dumps({"weights": [2.0, 3.0], "bias": 1.0, "version": "v1"}).encode()),
                           ("padding.bin", os.urandom(2 << 20))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


ARCHIVE = model_archive()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, pki, basic_registry, inference_image) -> Iterator[tuple[ServeProcess, S3FaultProxy]]:
    home = tmp_path_factory.mktemp("inference-s3-faults-home")
    with MotoServer(home / "moto.log") as moto, S3FaultProxy(moto.url) as proxy:
        direct = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", **CREDENTIALS)
        direct.create_bucket(Bucket=BUCKET)
        direct.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=ARCHIVE)
        running = prepare_home(home, pki, basic_registry)
        (home / "config.toml").write_text(f's3_endpoint_url = "{proxy.url}"\n{WAITS}{CONFIG_TOML}')
        running.start()
        try:
            yield running, proxy
        finally:
            running.stop()
            remove_containers(home)


@pytest.fixture
def proxy(proxied) -> Iterator[S3FaultProxy]:
    proxied[1].reset()
    yield proxied[1]
    proxied[1].reset()


def create_endpoint(server: ServeProcess, image: str) -> tuple[str, dict]:
    sm = server.client("sagemaker")
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, VpcConfig=VPC, PrimaryContainer={
        "Image": image, "ModelDataUrl": MODEL_URL, "ImageConfig": {
            "RepositoryAccessMode": "Vpc",
            "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": function_arn("registry-creds")}}})
    name = unique("endpoint")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("AllTraffic", model, 1, 1.0)]))
    return name, wait_status(sm, name, timeout=ENDED)


def test_model_data_rides_out_a_cut_mid_object_and_a_503_burst(proxied, proxy, inference_image):
    proxy.drop_after(len(ARCHIVE) // 3, times=2, path_contains=MODEL_PATH)
    proxy.fail(503, times=3, method="GET", path_contains=MODEL_PATH)
    name, endpoint = create_endpoint(proxied[0], inference_image)
    assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")
    assert sum(1 for method, path, _ in proxy.requests if method == "GET" and path == MODEL_PATH) == 6  # 3+2 cut+1
    assert predict(proxied[0].client("sagemaker-runtime"), name, [[1.0, 1.0]])["predictions"] == [6.0]
    proxied[0].client("sagemaker").delete_endpoint(EndpointName=name)


def test_model_data_from_an_endpoint_that_stalls_for_good_fails_naming_it(proxied, proxy, inference_image):
    proxy.stall(times=None, method="GET", after=1000, path_contains=MODEL_PATH)
    name, endpoint = create_endpoint(proxied[0], inference_image)
    reason = endpoint.get("FailureReason", "")
    assert endpoint["EndpointStatus"] == "Failed", endpoint
    assert MODEL_URL in reason and "stalled" in reason and "registry_read_timeout_seconds" in reason, reason
    assert "Traceback" not in reason
    proxied[0].client("sagemaker").delete_endpoint(EndpointName=name)
