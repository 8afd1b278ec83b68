"""Faults injected by a proxy in front of the real basic-auth registry: tampering, drops, 429, redirects, 5xx.

The proxy is the project's own test server (tests/fixtures/faultproxy.py) — the real registry cannot be
told to misbehave — and every byte it serves comes from that registry.
"""

from __future__ import annotations

import asyncio

import pytest

from fixtures.imagetools import keychain, make_layers
from forklift.images.build import build
from forklift.images.pull import pull
from forklift.images.push import push, source_from_store
from forklift.registry import DigestMismatch, RegistryClient, RegistryServerError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def layered_image(store, basic_registry, fault_proxy, tmp_path):
    """An image with three ~200 KB layers, pushed through the proxy; returns (reference, image)."""
    image = build(store, make_layers(tmp_path, [200_000, 200_000, 200_000], tmp_path.name), tag="localhost/faults:1")
    target = f"{fault_proxy.address}/faults/{tmp_path.name.lower().replace('_', '-')}:1"
    await push(source_from_store(store, image.reference), target, store, keychain=keychain(basic_registry))
    for layer in image.layers:
        store.blobs.delete(layer.digest)
    store.blobs.delete(image.config_descriptor.digest)
    store.records.remove(target)  # the push recorded it
    fault_proxy.reset()
    return target, image


async def test_tampered_blob_is_detected_and_nothing_is_stored(store, basic_registry, fault_proxy, layered_image):
    target, image = layered_image
    victim = image.layers[1].digest
    fault_proxy.tamper_blob(victim, times=None)
    with pytest.raises(DigestMismatch) as info:
        await pull(target, store, keychain=keychain(basic_registry))
    assert victim in str(info.value)
    assert not store.blobs.has(victim)
    victim_partial = store.blobs.root / "ingest" / f"{victim.split(':')[1]}.partial"
    assert not victim_partial.exists(), "the tampered bytes survived as a partial download"
    assert store.records.get(target) is None


async def test_dropped_connection_mid_blob_resumes_with_range(store, basic_registry, fault_proxy, layered_image):
    target, image = layered_image
    victim = image.layers[0].digest
    fault_proxy.drop_blob_after(victim, nbytes=70_000)
    result = await pull(target, store, keychain=keychain(basic_registry))
    assert store.blobs.has(victim)
    assert fault_proxy.blob_gets[victim] == 2
    ranged = [r for r in fault_proxy.requests if victim in r[1] and r[2] == 206]
    assert ranged, f"no 206 resumption in {fault_proxy.requests}"
    assert result.downloaded_bytes >= image.layers[0].size


async def test_429_with_retry_after_is_retried(store, basic_registry, fault_proxy, layered_image):
    target, image = layered_image
    fault_proxy.throttle(times=2, retry_after=1)
    result = await pull(target, store, keychain=keychain(basic_registry))
    assert result.image.digest == image.digest
    assert [status for _, _, status in fault_proxy.requests[:2]] == [429, 429]


async def test_5xx_is_retried_but_not_forever(store, basic_registry, fault_proxy, layered_image):
    target, image = layered_image
    fault_proxy.fail(503, times=2, path_contains="/manifests/")
    assert (await pull(target, store, keychain=keychain(basic_registry))).image.digest == image.digest
    fault_proxy.fail(500, times=100, path_contains="/manifests/")
    client = RegistryClient(fault_proxy.address, keychain=keychain(basic_registry), max_retries=2)
    async with client:
        with pytest.raises(RegistryServerError, match="500"):
            await client.get_manifest(target.split("/", 1)[1].split(":")[0], "1")


async def test_redirect_to_another_host_does_not_forward_authorization(
        store, basic_registry, fault_proxy, storage_server, layered_image):
    target, image = layered_image
    fault_proxy.redirect_blobs_to(storage_server)
    result = await pull(target, store, keychain=keychain(basic_registry))
    assert result.image.digest == image.digest
    assert len(storage_server.requests) == len(image.layers) + 1
    for headers in storage_server.requests:
        assert "authorization" not in headers, headers


async def test_concurrent_pulls_sharing_layers_fetch_each_blob_once(store, basic_registry, fault_proxy, tmp_path):
    shared = make_layers(tmp_path, [300_000, 300_000], "shared")
    one = build(store, shared + make_layers(tmp_path, [10_000], "one"), tag="localhost/share:one")
    two = build(store, shared + make_layers(tmp_path, [10_000], "two"), tag="localhost/share:two")
    for image, tag in ((one, "one"), (two, "two")):
        await push(source_from_store(store, image.reference), f"{fault_proxy.address}/share/img:{tag}", store,
                   keychain=keychain(basic_registry))
    for digest in {d.digest for image in (one, two) for d in [image.config_descriptor, *image.layers]}:
        store.blobs.delete(digest)
    fault_proxy.reset()

    await asyncio.gather(
        pull(f"{fault_proxy.address}/share/img:one", store, keychain=keychain(basic_registry)),
        pull(f"{fault_proxy.address}/share/img:two", store, keychain=keychain(basic_registry)),
    )
    assert fault_proxy.blob_gets[one.layers[0].digest] == 1
    assert fault_proxy.blob_gets[one.layers[1].digest] == 1
    assert max(fault_proxy.blob_gets.values()) == 1, fault_proxy.blob_gets


async def test_a_failing_push_layer_cancels_the_other_uploads(store, basic_registry, fault_proxy, tmp_path):
    image = build(store, make_layers(tmp_path, [50_000, 50_000, 50_000], tmp_path.name), tag="localhost/cancel:1")
    failing, *others = image.layers
    repository = f"cancel/{tmp_path.name.lower().replace('_', '-')}"
    fault_proxy.fail(500, times=100, path_contains=failing.digest)
    for descriptor in [image.config_descriptor, *others]:
        fault_proxy.delay(1.0, path_contains=descriptor.digest)  # still checking when the failure comes
    # The test's own client (push does not close it) with no retries: the failure comes at once, and
    # an upload left running would still have a live client to finish with.
    async with RegistryClient(fault_proxy.address, keychain=keychain(basic_registry), max_retries=0) as client:
        with pytest.raises(RegistryServerError, match="500"):
            await push(source_from_store(store, image.reference), f"{fault_proxy.address}/{repository}:1", store,
                       client=client)
        await asyncio.sleep(2.5)  # past the delay: an upload still running would have started by now
        uploads = [(method, path) for method, path, _ in fault_proxy.requests if method in ("POST", "PATCH", "PUT")]
        assert uploads == [], f"uploads went on after the push failed: {uploads}"
        for descriptor in others:
            assert not await client.blob_exists(repository, descriptor.digest)
