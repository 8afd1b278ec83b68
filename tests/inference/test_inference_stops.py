"""DeleteEndpoint takes effect whatever the endpoint's bring-up waits for: a registry that stalls
mid-pull, model data whose https source stops sending, a container that never answers /ping. The
endpoint is gone soon after, and no container of it is left running."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError
from inference_support import ROLE, VPC, create_model, function_arn, prepare_home, unique

from fixtures.imagetools import push_unique_image
from fixtures.serve import remove_containers
from fixtures.stallserver import StalledHttps
from forklift.devregistry import install_ca

STALL = 300.0  # how long the registry holds a blob: far past any bound below
GONE = 60.0  # how long a deleted endpoint may take to disappear here (its stop grace is 2 s)


def create_endpoint(sagemaker, model: str, health_timeout: int | None = None) -> str:
    variant = {"VariantName": "Primary", "ModelName": model, "InitialInstanceCount": 1,
               "InstanceType": "ml.t2.medium", "InitialVariantWeight": 1.0}
    if health_timeout:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = health_timeout
    config = unique("config")
    sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    name = unique("deleted")
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    return name


def wait_for_event(server, endpoint: str, words: str, timeout: float = GONE) -> None:
    events = server.home / "endpoints" / endpoint / "events.log"
    deadline = time.monotonic() + timeout
    while not (events.exists() and words in events.read_text()):
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoint {endpoint} never logged {words!r}")
        time.sleep(0.1)


def delete_and_wait_gone(sagemaker, name: str) -> float:
    began = time.monotonic()
    sagemaker.delete_endpoint(EndpointName=name)
    deadline = began + GONE
    while True:
        try:
            status = sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ValidationException"
            return time.monotonic() - began
        assert status == "Deleting"
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoint {name} still Deleting after {GONE:g} s")
        time.sleep(0.2)


def containers_of(server, endpoint: str) -> list[str]:
    """runc's containers whose bundle lies in the endpoint's directory (running or not)."""
    listed = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True, check=False)
    directory = str(server.home / "endpoints" / endpoint) + "/"
    return [c["id"] for c in json.loads(listed.stdout or "null") or [] if c.get("bundle", "").startswith(directory)]


@pytest.fixture
def fresh_image(tmp_path_factory, pki, basic_registry, busybox_rootfs) -> str:
    """An image (repository path) the server has not pulled, so its blobs come from the registry."""
    return push_unique_image(tmp_path_factory, pki, basic_registry, busybox_rootfs, "ep-stop")


def test_delete_during_a_stalled_image_pull(sagemaker, server, fault_proxy, pki, fresh_image):
    install_ca(pki, server.home / "certs.d", fault_proxy.address)
    model = create_model(sagemaker, server, f"{fault_proxy.address}/{fresh_image}")  # resolves the digest
    fault_proxy.delay(STALL, "/blobs/")
    name = create_endpoint(sagemaker, model)
    wait_for_event(server, name, "Creating endpoint")
    assert fault_proxy.wait_arrival("/blobs/", GONE), "the pull never asked the registry for a blob"
    took = delete_and_wait_gone(sagemaker, name)
    print(f"delete during a stalled pull: gone {took:.1f} s after DeleteEndpoint")
    assert containers_of(server, name) == []


def test_delete_while_waiting_for_a_container_that_is_never_healthy(sagemaker, server, inference_image):
    model = create_model(sagemaker, server, inference_image, environment={"MODE": "never-ready"})
    name = create_endpoint(sagemaker, model, health_timeout=600)
    wait_for_event(server, name, "Started instance")
    assert len(containers_of(server, name)) == 1
    delete_and_wait_gone(sagemaker, name)
    assert containers_of(server, name) == []


def test_delete_during_a_stalled_model_download(tmp_path_factory, pki, basic_registry, fresh_image):
    source = StalledHttps(pki)
    home = tmp_path_factory.mktemp("endpoint-stops-home")
    server = prepare_home(home, pki, basic_registry)
    server.extra_env["SSL_CERT_FILE"] = str(pki.ca_cert)  # the https source's certificate is the test CA's
    server.start()
    try:
        sagemaker = server.client("sagemaker")
        model = unique("model")
        sagemaker.create_model(ModelName=model, ExecutionRoleArn=ROLE, VpcConfig=VPC, PrimaryContainer={
            "Image": f"{basic_registry.address}/{fresh_image}", "ModelDataUrl": f"{source.url}/model.tar.gz",
            "ImageConfig": {"RepositoryAccessMode": "Vpc", "RepositoryAuthConfig": {
                "RepositoryCredentialsProviderArn": function_arn("registry-creds")}}})
        name = create_endpoint(sagemaker, model)
        assert source.gets.wait(GONE), "the endpoint never asked for its model data"
        delete_and_wait_gone(sagemaker, name)
        assert containers_of(server, name) == []
    finally:
        server.stop()
        remove_containers(home)
        source.close()
