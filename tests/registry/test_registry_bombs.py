"""Whatever bytes a registry sends, forklift reads a bounded amount: oversized or endless manifests
and token answers are refused while streaming, a blob longer than its descriptor is refused, and a
zero bomb pulled from the real registry stops at max_image_bytes with nothing half-unpacked.

Lying bodies come from tests/fixtures/lyingregistry.py (distribution cannot serve a body without
or against its Content-Length); everything else is the real registry over TLS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from fixtures import bombs
from fixtures.imagetools import keychain
from fixtures.lyingregistry import HUGE, LyingRegistry
from forklift.config import load_settings
from forklift.devregistry import install_ca
from forklift.images.imagestore import ImageStore
from forklift.images.limits import ImageLimitExceeded
from forklift.images.pull import pull
from forklift.images.rootfs import pull_and_prepare, rootfs_cache
from forklift.registry import DigestMismatch, RegistryClient, RegistryError
from forklift.registry.bounded import MAX_MANIFEST_BYTES, ResponseTooLarge
from forklift.registry.manifest import OCI_MANIFEST, Descriptor

pytestmark = pytest.mark.anyio
MiB = 1 << 20


@pytest.fixture
def lying(pki, forklift_home):
    with LyingRegistry(pki) as server:
        install_ca(pki, forklift_home / "certs.d", server.address)
        yield server


@pytest.fixture
def lying_token_server(pki, forklift_home):
    with LyingRegistry(pki, token_mode="endless") as server:
        install_ca(pki, forklift_home / "certs.d", server.address)
        yield server


async def pulled_with_peak(reference: str, store: ImageStore) -> tuple[BaseException, int]:
    """The error a pull of `reference` ends with, and the peak of Python memory allocated meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(RegistryError) as info:
            await pull(reference, store)
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_manifest_without_content_length_is_cut_at_the_limit(lying, store):
    error, peak = await pulled_with_peak(f"{lying.address}/lie/app:endless", store)
    assert isinstance(error, ResponseTooLarge)
    assert str(error) == (f"manifest lie/app:endless from {lying.address} is larger than 4 MiB, the most forklift "
                          "reads; it is refused")
    # The limit, its copy when joined, and one read; reading it all would have taken 256 MiB.
    assert peak < 2 * MAX_MANIFEST_BYTES + 4 * MiB, f"peak {peak >> 20} MiB"
    # What the server got to write: the limit, a read, and what the sockets' buffers hold.
    assert lying.sent_to("/v2/lie/app/manifests/endless") < MAX_MANIFEST_BYTES + 32 * MiB < HUGE


async def test_a_content_length_over_the_limit_is_refused_before_the_body(lying, store):
    error, peak = await pulled_with_peak(f"{lying.address}/lie/app:huge-length", store)
    assert isinstance(error, ResponseTooLarge) and "larger than 4 MiB" in str(error)
    assert peak < 4 * MiB, f"peak {peak >> 20} MiB"
    assert lying.sent_to("/v2/lie/app/manifests/huge-length") < 32 * MiB


async def test_a_content_length_that_lies_short_reads_no_more_than_it_says(lying, store):
    error, peak = await pulled_with_peak(f"{lying.address}/lie/app:short-length", store)
    assert "is not JSON" in str(error)  # 1000 spaces were read as the manifest, and nothing after them
    assert peak < 4 * MiB, f"peak {peak >> 20} MiB"


async def test_an_endless_token_answer_is_cut_at_the_limit(lying_token_server, store):
    server = lying_token_server
    error, peak = await pulled_with_peak(f"{server.address}/lie/app:1", store)
    assert isinstance(error, ResponseTooLarge)
    assert str(error).startswith(f"the token server's answer from {server.address} is larger than 4 MiB")
    assert peak < 16 * MiB, f"peak {peak >> 20} MiB"


async def push_raw(registry, repo: str, tag: str, blobs: list[bytes], manifest: bytes, tmp_path: Path) -> str:
    async with RegistryClient(registry.address, keychain=keychain(registry), settings=load_settings()) as client:
        for blob in blobs:
            path = tmp_path / bombs.digest(blob).split(":")[1]
            path.write_bytes(blob)
            await client.upload_blob(repo, Descriptor("application/octet-stream", bombs.digest(blob), len(blob)), path)
        await client.put_manifest(repo, tag, manifest, OCI_MANIFEST)
    return f"{registry.address}/{repo}:{tag}"


async def test_a_blob_longer_than_its_descriptor_is_refused(basic_registry, store, tmp_path):
    layer = os.urandom(300_000)
    config, manifest = bombs.image_documents([layer])
    manifest = manifest.replace(b'"size": 300000', b'"size": 299000')  # the registry holds 1000 bytes more
    reference = await push_raw(basic_registry, "bombs/long-blob", "1", [config, layer], manifest, tmp_path)
    with pytest.raises(DigestMismatch) as info:
        await pull(reference, store, keychain=keychain(basic_registry))
    assert str(info.value) == (f"blob {bombs.digest(layer)} from {basic_registry.address} is longer than the 299000 "
                               "bytes its descriptor gives; reading stopped there and the blob is refused")
    assert not store.blobs.has(bombs.digest(layer))


async def test_a_config_larger_than_the_limit_is_not_fetched(basic_registry, store, tmp_path):
    layer = os.urandom(1000)
    config, manifest = bombs.image_documents([layer])
    manifest = manifest.replace(f'"size": {len(config)}'.encode(), f'"size": {64 * MiB}'.encode())
    reference = await push_raw(basic_registry, "bombs/big-config", "1", [config, layer], manifest, tmp_path)
    with pytest.raises(ResponseTooLarge, match=f"the config of image {reference} is {64 * MiB} bytes by its "
                                               "manifest, more than the 8 MiB forklift reads"):
        await pull(reference, store, keychain=keychain(basic_registry))
    assert not store.blobs.has(bombs.digest(config))


async def test_a_layer_announced_larger_than_the_free_disk_is_refused_before_a_byte_lands(
        basic_registry, store, tmp_path):
    layer = os.urandom(1000)
    config, manifest = bombs.image_documents([layer])
    manifest = manifest.replace(b'"size": 1000', f'"size": {1 << 40}'.encode())  # 1 TiB, by the manifest
    reference = await push_raw(basic_registry, "bombs/announced", "1", [config, layer], manifest, tmp_path)
    with pytest.raises(ImageLimitExceeded, match=f"image {reference} needs 1 TiB to download and "):
        await pull(reference, store, keychain=keychain(basic_registry))
    assert not store.blobs.has(bombs.digest(layer)) and not store.blobs.has(bombs.digest(config))


async def test_a_zero_bomb_stops_at_max_image_bytes(basic_registry, forklift_home, tmp_path):
    (forklift_home / "config.toml").write_text('max_image_bytes = "64 MiB"\n')
    store = ImageStore(load_settings())
    layer = bombs.zero_bomb(10 << 30)
    config, manifest = bombs.image_documents([layer])
    reference = await push_raw(basic_registry, "bombs/zeros", "1", [config, layer], manifest, tmp_path)
    with pytest.raises(ImageLimitExceeded) as info:
        await pull_and_prepare(reference, store, keychain=keychain(basic_registry))
    assert str(info.value) == (f"image {reference} unpacks to more than max_image_bytes (64 MiB): raise "
                               "max_image_bytes in config.toml or free disk")
    cache = rootfs_cache(store).directory
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []  # no partial rootfs
    assert store.blobs.has(bombs.digest(layer))  # the download is kept


def test_images_pull_prints_the_limit_and_exits_1(lying, forklift_home):
    reference = f"{lying.address}/lie/app:endless"
    result = subprocess.run([sys.executable, "-m", "forklift", "images", "pull", reference], capture_output=True,
                            text=True, env=os.environ.copy(), timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (f"manifest lie/app:endless from {lying.address} is larger than 4 MiB, the most forklift reads; it is "
            "refused") in result.stderr


async def test_a_refused_layer_stops_the_rest_of_the_pull(basic_registry, fault_proxy, forklift_home, tmp_path):
    """The bomb is the base layer; the layer above it is held back by the proxy for 10 s: a pull
    left running would wait for it and store it."""
    (forklift_home / "config.toml").write_text('max_image_bytes = "64 MiB"\n')
    store = ImageStore(load_settings())
    bomb, above = bombs.zero_bomb(1 << 30), os.urandom(100_000)
    config, manifest = bombs.image_documents([bomb, above])
    await push_raw(basic_registry, "bombs/two-layers", "1", [config, bomb, above], manifest, tmp_path)
    fault_proxy.delay(10, bombs.digest(above).split(":")[1])
    reference = f"{fault_proxy.address}/bombs/two-layers:1"
    with pytest.raises(ImageLimitExceeded, match="more than max_image_bytes"):
        await pull_and_prepare(reference, store, keychain=keychain(basic_registry))
    assert store.blobs.has(bombs.digest(bomb)) and not store.blobs.has(bombs.digest(above))
    assert store.records.get(reference) is None


async def test_a_blob_larger_than_the_answer_limit_is_still_found_by_head(basic_registry, forklift_home, tmp_path):
    """HEAD answers carry the blob's length but no body: the limit on answers read whole must not apply."""
    big = os.urandom(MAX_MANIFEST_BYTES + MiB)
    async with RegistryClient(basic_registry.address, keychain=keychain(basic_registry),
                              settings=load_settings()) as client:
        path = tmp_path / "big"
        path.write_bytes(big)
        digest = bombs.digest(big)
        assert not await client.blob_exists("bombs/big-blob", digest)
        await client.upload_blob("bombs/big-blob", Descriptor("application/octet-stream", digest, len(big)), path)
        assert await client.blob_exists("bombs/big-blob", digest)
