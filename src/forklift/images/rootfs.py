"""From a stored image to a root filesystem a container can use: unpacked once per layer chain, then shared."""

from __future__ import annotations

from pathlib import Path

from forklift.images.local import ImageStore, LocalImage
from forklift.images.unpack import Layer, RootfsCache


class ImageConfigError(ValueError):
    pass


def rootfs_cache(store: ImageStore) -> RootfsCache:
    return RootfsCache(store.settings.home / "rootfs")


def prepare_rootfs(store: ImageStore, image: LocalImage) -> tuple[Path, dict]:
    """The unpacked rootfs of `image` and its runtime config (the OCI config's `config` object)."""
    config = store.config(image)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(image.layers):
        raise ImageConfigError(
            f"image {image.reference} lists {len(image.layers)} layers but its config has {len(diff_ids)} diff IDs")
    layers = [Layer(store.blobs.path(d.digest), d.digest, d.media_type, diff_id)
              for d, diff_id in zip(image.layers, diff_ids)]
    return rootfs_cache(store).get_or_unpack(layers), config.get("config") or {}
