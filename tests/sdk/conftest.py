"""The SageMaker Python SDK v2's everyday session against a real `forklift serve` on the embedded store:
the SDK (and the AWS CLI v1) from the lock file's virtual environment, the demo's sample image (a
framework image in script mode, as the SageMaker toolkits run it) pushed to the TLS basic-auth
registry, no external S3."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sdk_support import AWS_CLI, SDK_PYTHON, SDK_V2_VENV, TELEMETRY_OPT_OUT, SdkRun

from fixtures.imagetools import keychain, trusting_store
from fixtures.serve import ServeProcess, remove_containers
from forklift.demo.samples import build_sample_image
from forklift.devregistry import install_ca
from forklift.images.push import push, source_from_store


@pytest.fixture(scope="session")
def sample_image(tmp_path_factory, pki, basic_registry) -> str:
    store = trusting_store(tmp_path_factory, pki, basic_registry, "sdk-image-home")
    reference = f"{basic_registry.address}/docker-local/sdk-sample:1.0"
    image = build_sample_image(store, tmp_path_factory.mktemp("sdk-sample"), reference)
    asyncio.run(push(source_from_store(store, image.reference), reference, store, keychain=keychain(basic_registry)))
    return reference


@pytest.fixture(scope="module")
def sdk(tmp_path_factory, pki, basic_registry, sample_image) -> Iterator[SdkRun]:
    if not SDK_PYTHON.exists() or not AWS_CLI.exists():
        pytest.fail(f"{SDK_V2_VENV} lacks the SDK v2 or the AWS CLI: `make test` installs both "
                    "(WITH_SDK_V2=1 scripts/setup.sh)")
    home = tmp_path_factory.mktemp("sdk-serve-home")
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text("stop_grace_seconds = 5\n[inference]\nhealth_check_interval_seconds = 0.5\n")
    server = ServeProcess(home)
    server.register_function("registry-creds", basic_registry.username, basic_registry.password)
    server.start()
    user_home = tmp_path_factory.mktemp("sdk-user-home")
    (user_home / ".config" / "sagemaker").mkdir(parents=True)
    (user_home / ".config" / "sagemaker" / "config.yaml").write_text(TELEMETRY_OPT_OUT)
    yield SdkRun(server, sample_image, user_home)
    try:
        if server.process and server.process.poll() is None:
            sm = server.client("sagemaker")
            for endpoint in sm.list_endpoints(MaxResults=100)["Endpoints"]:
                sm.delete_endpoint(EndpointName=endpoint["EndpointName"])
    finally:
        server.stop()
        remove_containers(home)

