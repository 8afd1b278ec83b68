"""A full disk under FORKLIFT_HOME (a small tmpfs, tests/fixtures/smalldisk.py) while an image is
pulled or unpacked: one clear error naming the disk and FORKLIFT_HOME, no blob or rootfs kept as if
complete, and the same pull succeeding once space is freed."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from pathlib import Path

import pytest

from fixtures import bombs
from fixtures.imagetools import build_and_push, keychain, make_layers, trusting_store
from fixtures.smalldisk import MiB, fill, small_disk
from forklift.config import Settings
from forklift.devregistry import install_ca
from forklift.images.build import BuildOptions
from forklift.images.errors import ImageError
from forklift.images.imagestore import ImageStore
from forklift.images.limits import UnpackLimits
from forklift.images.rootfs import pull_and_prepare
from forklift.images.unpack import Layer, RootfsCache

IS_ROOT = __import__("os").geteuid() == 0
pytestmark = pytest.mark.skipif(not IS_ROOT, reason="mounting a small tmpfs needs root")


@pytest.fixture
def home(tmp_path, pki, basic_registry, fault_proxy):
    with small_disk(tmp_path / "home", 64) as mounted:
        for address in (basic_registry.address, fault_proxy.address):
            install_ca(pki, mounted / "certs.d", address)
        yield mounted


@pytest.fixture(scope="module")
def image(tmp_path_factory, pki, basic_registry, _fault_proxy) -> str:
    """Two incompressible 6 MiB layers, pulled through the fault proxy."""
    store = trusting_store(tmp_path_factory, pki, basic_registry, "disk-full-build")
    root = tmp_path_factory.mktemp("disk-full-layers")
    reference = f"{basic_registry.address}/disk-full/two-layers:1"
    build_and_push(store, basic_registry, make_layers(root, [6 * MiB, 6 * MiB], root.name), reference,
                   BuildOptions(cmd=["/bin/true"]))
    return reference.replace(basic_registry.address, _fault_proxy.address)


def pull(home: Path, reference: str, registry) -> Path:
    store = ImageStore(Settings(home=home))
    return asyncio.run(pull_and_prepare(reference, store, keychain=keychain(registry))).rootfs


def blobs_verify(home: Path) -> list[str]:
    """Every blob in the store hashes to its name (the store is not corrupted); their digests."""
    found = []
    for path in (home / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, f"{path} does not hold its digest"
        found.append(path.name)
    return found


def unpacked(home: Path) -> list[str]:
    """What the rootfs cache holds besides its lock files."""
    cache = home / "rootfs"
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) if cache.is_dir() else []


def test_an_image_larger_than_the_free_space_is_refused_then_pulled_once_space_is_freed(home, image,
                                                                                        basic_registry):
    ballast = fill(home, leave=10 * MiB)
    with pytest.raises(ImageError) as info:
        pull(home, image, basic_registry)
    message = str(info.value)
    assert "free disk space" in message and "FORKLIFT_HOME" in message and image in message, message
    assert blobs_verify(home) == []
    ballast.unlink()
    rootfs = pull(home, image, basic_registry)
    assert len(list((rootfs / "data").iterdir())) == 2
    assert len(blobs_verify(home)) == 4  # config, two layers, manifest


def test_a_disk_that_fills_mid_pull_fails_clearly_and_the_next_pull_resumes(home, image, basic_registry,
                                                                           fault_proxy):
    fault_proxy.delay(2.0, "/blobs/")  # the blobs wait: the disk fills after the room was checked
    failed: list[BaseException] = []

    def pulling() -> None:
        try:
            pull(home, image, basic_registry)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failed.append(exc)

    thread = threading.Thread(target=pulling)
    thread.start()
    leases = home / "blobs" / "leases"
    deadline = time.monotonic() + 30
    while not (leases.is_dir() and any(leases.iterdir())):
        assert time.monotonic() < deadline and thread.is_alive(), f"the pull took no lease: {failed}"
        time.sleep(0.01)
    ballast = fill(home)
    thread.join(60)
    assert not thread.is_alive()
    assert failed and isinstance(failed[0], ImageError), failed
    message = str(failed[0])
    assert "No space left on device" in message and "FORKLIFT_HOME" in message and image in message, message
    assert len(blobs_verify(home)) <= 1  # the config may have landed; no layer is taken as complete
    assert unpacked(home) == []
    ballast.unlink()
    fault_proxy.reset()
    rootfs = pull(home, image, basic_registry)
    assert len(list((rootfs / "data").iterdir())) == 2
    assert len(blobs_verify(home)) == 4


def test_an_unpack_that_runs_out_of_space_leaves_no_rootfs_and_succeeds_later(tmp_path):
    blob = bombs.zero_files(3, 8 * MiB)  # 24 MiB of zeros in a few KB of gzip
    layer_path = tmp_path / "zeros.blob"
    layer_path.write_bytes(blob)
    layer = Layer(layer_path, bombs.digest(blob), "application/vnd.oci.image.layer.v1.tar+gzip",
                  bombs.diff_id(blob), len(blob))
    with small_disk(tmp_path / "home", 64) as home:
        cache = RootfsCache(home / "rootfs")
        cache.directory.mkdir()
        limits = UnpackLimits(max_bytes=1 << 30, max_files=1000)  # an explicit cap above the free disk
        ballast = fill(home, leave=12 * MiB)
        with pytest.raises(ImageError) as info:
            cache.get_or_unpack([layer], image="registry.test/zeros:1", limits=limits)
        message = str(info.value)
        assert "registry.test/zeros:1" in message and "free disk space" in message, message
        assert cache.list() == [] and unpacked(home) == []
        ballast.unlink()
        rootfs = cache.get_or_unpack([layer], image="registry.test/zeros:1", limits=limits)
        assert sorted(p.stat().st_size for p in rootfs.iterdir()) == [8 * MiB] * 3
