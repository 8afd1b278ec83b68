"""Endpoint images with a `User`: the model server runs as that user, reads its model and answers;
a user the image lacks fails the endpoint with a reason naming it."""

from __future__ import annotations

import pytest
from inference_support import SERVE_PY, create_config, create_model, deploy, predict, unique, wait_status

from fixtures.imagetools import build_and_push, cached_python_rootfs, trusting_store
from forklift.images.build import BuildOptions

# The stock server, answering with the uid it runs as in the version field.
SERVE_AS_USER = SERVE_PY.replace('"version": MODEL.get("version")', '"version": os.getuid()')


def _push(tmp_path_factory, pki, basic_registry, user: str, tag: str) -> str:
    store = trusting_store(tmp_path_factory, pki, basic_registry, "user-inference-home")
    code = tmp_path_factory.mktemp("user-inference-code")
    (code / "opt" / "program").mkdir(parents=True)
    (code / "opt" / "program" / "serve.py").write_text(SERVE_AS_USER)
    reference = f"{basic_registry.address}/docker-local/user-inference:{tag}"
    build_and_push(store, basic_registry, [cached_python_rootfs(), code], reference,
                   BuildOptions(entrypoint=["python3", "/opt/program/serve.py"], user=user))
    return reference


@pytest.fixture(scope="module")
def user_images(tmp_path_factory, pki, basic_registry) -> dict[str, str]:
    return {"numeric": _push(tmp_path_factory, pki, basic_registry, "1000:1000", "numeric"),
            "unknown": _push(tmp_path_factory, pki, basic_registry, "nobody", "unknown")}


def test_a_non_root_model_server_serves(sagemaker, server, runtime_client, user_images):
    name = deploy(sagemaker, server, user_images["numeric"])
    answer = predict(runtime_client, name, [[1.0, 1.0]])
    assert answer["predictions"] == [6.0] and answer["version"] == 1000


def test_a_non_root_model_server_reads_model_files_the_archive_made_private(sagemaker, server, runtime_client,
                                                                          user_images):
    """model.json is 0600 in the archive: forklift extracts it, then hands the tree to the image's User."""
    name = deploy(sagemaker, server, user_images["numeric"], model_mode=0o600)
    answer = predict(runtime_client, name, [[1.0, 1.0]])
    assert answer["predictions"] == [6.0] and answer["version"] == 1000


def test_a_user_the_image_lacks_fails_the_endpoint(sagemaker, server, user_images):
    model = create_model(sagemaker, server, user_images["unknown"])
    name = unique("nouser")
    config = create_config(sagemaker, [("Primary", model, 1, 1.0)])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    endpoint = wait_status(sagemaker, name)
    assert endpoint["EndpointStatus"] == "Failed"
    assert "'nobody' is not in the image's /etc/passwd" in endpoint["FailureReason"], endpoint["FailureReason"]
