"""Inference fixtures: one real `forklift serve` subprocess for the session (its own FORKLIFT_HOME,
trusting the test CA, short health-check timings), and an inference image built from forklift's slim
Python rootfs plus a small Python model server (see inference_support), pushed to the TLS
basic-auth registry. Credentials-provider functions are registered with the real CLI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from inference_support import SERVE_PY, prepare_home

from fixtures.imagetools import build_and_push, cached_python_rootfs, trusting_store
from fixtures.serve import ServeProcess, remove_containers
from forklift.images.build import BuildOptions


@pytest.fixture(scope="session")
def inference_image(tmp_path_factory, pki, basic_registry) -> str:
    store = trusting_store(tmp_path_factory, pki, basic_registry, "inference-image-home")
    code = tmp_path_factory.mktemp("inference-code")
    (code / "opt" / "program").mkdir(parents=True)
    (code / "opt" / "program" / "serve.py").write_text(SERVE_PY)
    reference = f"{basic_registry.address}/docker-local/my-inference-image:latest"
    build_and_push(store, basic_registry, [cached_python_rootfs(), code], reference,
                   BuildOptions(entrypoint=["python3", "/opt/program/serve.py"]))
    return reference


def _serving(home, pki, basic_registry, database=None) -> Iterator[ServeProcess]:
    """A `forklift serve` on `home`; afterwards its endpoints are deleted and their containers removed."""
    running = prepare_home(home, pki, basic_registry, database).start()
    yield running
    try:
        if running.process and running.process.poll() is None:
            sm = running.client("sagemaker")
            for endpoint in sm.list_endpoints(MaxResults=100)["Endpoints"]:
                sm.delete_endpoint(EndpointName=endpoint["EndpointName"])
    finally:
        running.stop()
        remove_containers(home)


@pytest.fixture(scope="session")
def server(tmp_path_factory, pki, basic_registry, inference_image) -> Iterator[ServeProcess]:
    yield from _serving(tmp_path_factory.mktemp("inference-serve-home"), pki, basic_registry)


@pytest.fixture(scope="module")
def server_on_both_engines(tmp_path_factory, pki, basic_registry, inference_image, database) -> Iterator[ServeProcess]:
    """A module's own server, on SQLite and then on PostgreSQL (`database`): a module that overrides
    `server` with it runs each of its tests on both. The flow and UpdateEndpoint modules do; the rest
    share the session's SQLite server (an endpoint's life is the same on either, and costly to double)."""
    yield from _serving(tmp_path_factory.mktemp("inference-serve-home"), pki, basic_registry, database)


@pytest.fixture
def own_server(tmp_path_factory, pki, basic_registry, inference_image) -> Iterator[ServeProcess]:
    """A server for one test alone, which may stop and start it."""
    yield from _serving(tmp_path_factory.mktemp("inference-own-home"), pki, basic_registry)


@pytest.fixture
def sagemaker(server: ServeProcess):
    return server.client("sagemaker")


@pytest.fixture
def runtime_client(server: ServeProcess):
    return server.client("sagemaker-runtime")
