"""The base of the image store's errors (unknown images, missing blobs, bad layouts and layers)."""

from __future__ import annotations

from forklift.errors import ForkliftError


class ImageError(ForkliftError):
    """An image in forklift's local store, or one given to it, cannot be used as asked."""
