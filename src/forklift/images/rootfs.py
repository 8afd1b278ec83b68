"""From an image to a root filesystem a container can use: unpacked once per layer chain, then shared.

`pull_and_prepare` streams: each layer is applied as soon as its blob (and every layer below it) has
landed, while the layers above it are still downloading.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forklift.credentials import Keychain
from forklift.images.errors import ImageError
from forklift.images.imagestore import ImageStore, LocalImage
from forklift.images.limits import UnpackLimits
from forklift.images.progress import TransferProgress
from forklift.images.pull import pull
from forklift.images.unpack import Layer, RootfsCache
from forklift.reference import Reference
from forklift.registry.manifest import JSONObject, Manifest, Platform


class ImageConfigError(ImageError, ValueError):
    pass


@dataclass(frozen=True)
class PreparedImage:
    image: LocalImage
    rootfs: Path
    config: JSONObject  # the OCI image config's runtime `config` object (Entrypoint, Cmd, Env, WorkingDir, User)


def rootfs_cache(store: ImageStore) -> RootfsCache:
    return RootfsCache(store.settings.home / "rootfs")


def _layers(store: ImageStore, manifest: Manifest, config: JSONObject, name: str) -> list[Layer]:
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest.layers):
        raise ImageConfigError(
            f"image {name} lists {len(manifest.layers)} layers but its config has {len(diff_ids)} diff IDs")
    return [Layer(store.blobs.path(d.digest), d.digest, d.media_type, diff_id, d.size)
            for d, diff_id in zip(manifest.layers, diff_ids, strict=True)]


def prepare_rootfs(store: ImageStore, image: LocalImage) -> tuple[Path, JSONObject]:
    """The unpacked rootfs of a stored `image` and its runtime config."""
    config = store.config(image)
    layers = _layers(store, image.manifest, config, image.reference)
    rootfs = rootfs_cache(store).get_or_unpack(layers, image=image.reference,
                                               limits=UnpackLimits.from_settings(store.settings))
    return rootfs, config.get("config") or {}


class _Arrivals:
    """Blobs that have landed in the store, for a thread that waits on them; aborts when the pull fails."""

    def __init__(self) -> None:
        self._landed: set[str] = set()
        self._manifest: Manifest | None = None
        self._failed = False
        self._changed = threading.Condition()

    def manifest(self, manifest: Manifest) -> None:
        with self._changed:
            self._manifest = manifest
            self._changed.notify_all()

    def landed(self, digest: str) -> None:
        with self._changed:
            self._landed.add(digest)
            self._changed.notify_all()

    def fail(self) -> None:
        with self._changed:
            self._failed = True
            self._changed.notify_all()

    def _wait(self, ready: Callable[[], bool]) -> None:
        with self._changed:
            self._changed.wait_for(lambda: ready() or self._failed)
            self.check()

    def check(self) -> None:
        """Raise once the pull has failed or was cancelled (a stop): the unpack it feeds gives up."""
        if self._failed:
            raise asyncio.CancelledError("the pull failed; unpacking stopped")

    def wait_manifest(self) -> Manifest:
        self._wait(lambda: self._manifest is not None)
        manifest = self._manifest
        if manifest is None:  # _wait returns only once it is set
            raise RuntimeError("the pull gave no manifest")
        return manifest

    def wait_blob(self, digest: str) -> None:
        self._wait(lambda: digest in self._landed)


async def pull_and_prepare(
    reference: Reference | str,
    store: ImageStore,
    *,
    keychain: Keychain | None = None,
    platform: Platform | None = None,
    progress: TransferProgress | None = None,
) -> PreparedImage:
    """Pull `reference` and unpack its rootfs, overlapping the two."""
    arrivals = _Arrivals()

    def unpack() -> tuple[Path, JSONObject]:
        manifest = arrivals.wait_manifest()
        arrivals.wait_blob(manifest.config.digest)
        config = json.loads(store.blobs.read_bytes(manifest.config.digest))
        layers = _layers(store, manifest, config, str(reference))
        limits = UnpackLimits.from_settings(store.settings)
        rootfs = rootfs_cache(store).get_or_unpack(layers, wait_for=lambda layer: arrivals.wait_blob(layer.digest),
                                                   image=str(reference), limits=limits, abort=arrivals.check)
        return rootfs, config.get("config") or {}

    unpacking = asyncio.ensure_future(asyncio.to_thread(unpack))
    pulling = asyncio.ensure_future(pull(reference, store, keychain=keychain, platform=platform, progress=progress,
                                         on_manifest=arrivals.manifest, on_blob=arrivals.landed))
    try:
        await asyncio.wait({pulling, unpacking}, return_when=asyncio.FIRST_EXCEPTION)
        if unpacking.done() and unpacking.exception() is not None:
            # A refused layer (a bomb, a full disk) ends the pull too: the layers above it are not needed.
            pulling.cancel()
            await asyncio.gather(pulling, return_exceptions=True)
        result = await pulling
    except BaseException:
        arrivals.fail()
        pulling.cancel()
        await asyncio.gather(unpacking, pulling, return_exceptions=True)
        refused = unpacking.exception() if unpacking.done() and not unpacking.cancelled() else None
        if refused is not None:  # the cause, rather than the pull's cancellation it led to
            raise refused from None
        raise
    rootfs, config = await unpacking
    return PreparedImage(result.image, rootfs, config)
