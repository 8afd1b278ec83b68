"""Registry-layer fixtures: a store in a fresh FORKLIFT_HOME and a small image built in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from forklift.config import load_settings
from forklift.images.build import BuildOptions, build
from forklift.images.imagestore import ImageStore


@pytest.fixture
def store(forklift_home: Path) -> ImageStore:
    return ImageStore(load_settings())


@pytest.fixture
def busybox_image(store: ImageStore, busybox_rootfs: Path):
    return build(store, [busybox_rootfs], tag="localhost/test/busybox:1",
                 options=BuildOptions(cmd=["/bin/sh"], env=["FOO=bar"]))
