"""`images prune` beside writers: a pull's blobs are leased until its record lands, a dead writer's lease is not."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys

import pytest

from fixtures.imagetools import keychain, make_layers
from forklift.images.build import build
from forklift.images.pull import pull
from forklift.images.push import push, source_from_store

pytestmark = pytest.mark.anyio


def _prune_in_another_process() -> str:
    result = subprocess.run([sys.executable, "-m", "forklift", "images", "prune"], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _intact(store, digest: str) -> bool:
    return store.blobs.has(digest) and "sha256:" + hashlib.sha256(store.blobs.read_bytes(digest)).hexdigest() == digest


async def test_prune_during_a_pull_loses_nothing(store, basic_registry, fault_proxy, tmp_path):
    image = build(store, make_layers(tmp_path, [200_000, 200_000, 200_000], tmp_path.name), tag="localhost/lease:1")
    target = f"{fault_proxy.address}/lease/{tmp_path.name.lower().replace('_', '-')}:1"
    await push(source_from_store(store, image.reference), target, store, keychain=keychain(basic_registry))
    blobs = [image.config_descriptor.digest, *(layer.digest for layer in image.layers)]
    for digest in blobs:
        store.blobs.delete(digest)
    store.records.remove(target)
    store.remove(image.reference)  # nothing refers to the image's blobs now: only the lease keeps them
    junk = store.blobs.put_bytes(b"a blob no image refers to")

    held_back = image.layers[-1].digest
    fault_proxy.delay(3.0, path_contains=held_back)  # the last layer arrives after the prune
    landed: set[str] = set()
    others_landed = asyncio.Event()

    def on_blob(digest: str) -> None:
        landed.add(digest)
        if landed >= set(blobs) - {held_back}:
            others_landed.set()

    pulling = asyncio.create_task(pull(target, store, keychain=keychain(basic_registry), on_blob=on_blob))
    await asyncio.wait_for(others_landed.wait(), 30)
    assert not pulling.done()
    output = await asyncio.to_thread(_prune_in_another_process)
    assert not pulling.done(), "the prune did not run during the pull"
    assert "Deleted 1 blobs" in output, output  # the junk: what the pull has written is leased

    result = await pulling
    assert result.image.digest == image.digest
    for digest in [image.digest, *blobs]:
        assert _intact(store, digest), digest
    assert not store.blobs.has(junk)
    assert list((store.blobs.root / "leases").glob("*.lease")) == []  # released once the record landed
    assert store.prune() == (0, 0)  # the record keeps the pulled image now


async def test_prune_in_another_thread_keeps_a_live_lease(store):
    digest = store.blobs.put_bytes(b"being written")
    with store.blobs.lease(digest):
        assert await asyncio.to_thread(store.prune) == (0, 0)
        assert store.blobs.has(digest)
    assert store.prune() == (1, len(b"being written"))
    assert not store.blobs.has(digest)


def test_a_lease_left_by_a_dead_process_does_not_protect_blobs(store):
    digest = store.blobs.put_bytes(b"left behind by a crashed pull")
    crash = ("import os, sys; from pathlib import Path; from forklift.images.content import BlobStore; "
             "BlobStore(Path(sys.argv[1])).lease(sys.argv[2]); os._exit(1)")
    subprocess.run([sys.executable, "-c", crash, str(store.blobs.root), digest], env=os.environ.copy(), timeout=60,
                   check=False)
    [stale] = list((store.blobs.root / "leases").glob("*.lease"))
    assert digest in stale.read_text()

    removed, _ = store.prune()
    assert removed == 1 and not store.blobs.has(digest)
    assert not stale.exists()
