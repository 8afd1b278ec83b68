"""A training job whose image is a bomb fails with a FailureReason naming the image, the limit and
the setting to raise; the server (its own, with max_image_bytes in config.toml) keeps no partial rootfs."""

from __future__ import annotations

import asyncio

import pytest
from training_support import busybox_job, unique, wait_for

from fixtures import bombs
from fixtures.imagetools import keychain
from fixtures.serve import serving
from forklift.config import Settings
from forklift.devregistry import install_ca
from forklift.registry import RegistryClient
from forklift.registry.manifest import OCI_MANIFEST, Descriptor


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry):
    config = 'max_image_bytes = "64 MiB"\nmax_image_files = 1000\n'
    yield from serving(tmp_path_factory.mktemp("bombs-serve-home"), pki, basic_registry, config)


def push_bomb(pki, registry, repo: str, layer: bytes, tmp_path) -> str:
    config, manifest = bombs.image_documents([layer])
    settings = Settings(home=tmp_path)
    install_ca(pki, tmp_path / "certs.d", registry.address)

    async def push() -> None:
        async with RegistryClient(registry.address, keychain=keychain(registry), settings=settings) as client:
            for blob in (config, layer):
                path = tmp_path / "blob"
                path.write_bytes(blob)
                await client.upload_blob(repo, Descriptor("application/octet-stream", bombs.digest(blob), len(blob)),
                                         path)
            await client.put_manifest(repo, "1", manifest, OCI_MANIFEST)
    asyncio.run(push())
    return f"{registry.address}/{repo}:1"


def test_a_zero_bomb_fails_the_job_naming_max_image_bytes(server, pki, basic_registry, tmp_path):
    image = push_bomb(pki, basic_registry, "bombs/train-zeros", bombs.zero_bomb(10 << 30), tmp_path)
    sagemaker = server.client("sagemaker")
    name = unique("zero-bomb")
    sagemaker.create_training_job(**busybox_job(name, image, "true"))
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (f"ClientError: image {image} unpacks to more than max_image_bytes (64 MiB): "
                                    "raise max_image_bytes in config.toml or free disk")
    rootfs = server.home / "rootfs"
    assert [p.name for p in rootfs.iterdir() if not p.name.endswith(".lock")] == []


def test_too_many_files_fails_the_job_naming_max_image_files(server, pki, basic_registry, tmp_path):
    image = push_bomb(pki, basic_registry, "bombs/train-files", bombs.empty_files(1500), tmp_path)
    sagemaker = server.client("sagemaker")
    name = unique("file-bomb")
    sagemaker.create_training_job(**busybox_job(name, image, "true"))
    job = wait_for(sagemaker, name)
    assert job["FailureReason"] == (f"ClientError: image {image} has more than max_image_files (1,000) files: "
                                    "raise max_image_files in config.toml")
