"""A stopped pull's download thread outlives the task; it must not write into the next pull's file.

Through the fault proxy in front of the real basic-auth registry: the stopped pull's request is held,
and its answer arrives while the next pull of the same blob is half way through writing.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from fixtures.imagetools import keychain, make_layers
from forklift.images.build import build
from forklift.images.push import push, source_from_store
from forklift.registry import RegistryClient

pytestmark = pytest.mark.anyio

LAYER = 4 * 1024 * 1024  # several of the downloader's 1 MiB blocks


async def test_a_stopped_pulls_late_answer_does_not_corrupt_the_next_pull(store, basic_registry, fault_proxy,
                                                                         tmp_path):
    image = build(store, make_layers(tmp_path, [LAYER], tmp_path.name), tag="localhost/stopped:1")
    repository = f"stopped/{tmp_path.name.lower().replace('_', '-')}"
    await push(source_from_store(store, image.reference), f"{fault_proxy.address}/{repository}:1", store,
               keychain=keychain(basic_registry))
    layer = image.layers[0]
    store.blobs.delete(layer.digest)
    fault_proxy.reset()
    # Every GET of the layer is slow enough that the stopped pull's answer comes mid-way through the next.
    fault_proxy.drip_blob(layer.digest, piece=256 * 1024, interval=0.15)
    fault_proxy.delay(2.0, path_contains=layer.digest)

    async with RegistryClient(fault_proxy.address, keychain=keychain(basic_registry)) as first, \
            RegistryClient(fault_proxy.address, keychain=keychain(basic_registry)) as second:
        await first.ping()
        await second.ping()
        stopped = asyncio.create_task(
            store.blobs.ensure(layer.digest, lambda partial: first.fetch_blob(repository, layer, partial)))
        await asyncio.sleep(0.5)  # the request is held by the proxy
        stopped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopped
        fault_proxy.delay(0.0, path_contains=layer.digest)
        path, fetched = await asyncio.wait_for(
            store.blobs.ensure(layer.digest, lambda partial: second.fetch_blob(repository, layer, partial)), 60)
        await asyncio.sleep(3.0)  # the stopped pull's answer has come by now, whatever it did with it

    assert fetched
    data = path.read_bytes()
    assert len(data) == layer.size
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.digest, "the stored blob is not the blob"
