"""Image bombs against the unpacker: small hostile layers (tests/fixtures/bombs.py) that claim huge
sizes, counts or headers are refused by their real size before the disk or memory fills, and leave
no partial rootfs behind (the blobs stay)."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from fixtures import bombs
from forklift.images.limits import ImageLimitExceeded, UnpackLimits
from forklift.images.unpack import Layer, RootfsCache, apply_layer

IMAGE = "registry.test:5000/bomb:1"
MiB = bombs.MiB
GiB = 1 << 30


def layer_of(tmp_path: Path, blob: bytes, name: str, *, complete: bool = False) -> Layer:
    """`complete`: the layer is unpacked to its end, so its diff_id must be the real one."""
    path = tmp_path / f"{name}.blob"
    path.write_bytes(blob)
    diff_id = bombs.diff_id(blob) if complete else bombs.made_up_diff_id(blob)
    return Layer(path, bombs.digest(blob), "application/vnd.oci.image.layer.v1.tar+gzip", diff_id, len(blob))


def unpack(cache_dir: Path, layers: list[Layer], *, max_bytes: int | None = None, max_files: int = 1_000_000) -> Path:
    return RootfsCache(cache_dir).get_or_unpack(layers, image=IMAGE, limits=UnpackLimits(max_bytes, max_files))


def leftovers(cache_dir: Path) -> list[str]:
    """What an unpack left in the rootfs directory besides its lock files."""
    return sorted(p.name for p in cache_dir.iterdir() if not p.name.endswith(".lock"))


def test_a_gzip_of_zeros_claiming_10_gib_is_refused_before_anything_is_written(tmp_path):
    blob = bombs.zero_bomb(10 * GiB)
    assert len(blob) < 12 * MiB  # the probe's bomb: about 10 MB of blob
    layer = layer_of(tmp_path, blob, "zeros")
    cache = tmp_path / "rootfs"
    with pytest.raises(ImageLimitExceeded) as info:
        unpack(cache, [layer], max_bytes=64 * MiB)
    assert str(info.value) == (f"image {IMAGE} unpacks to more than max_image_bytes (64 MiB): raise "
                               "max_image_bytes in config.toml or free disk")
    assert leftovers(cache) == []
    assert layer.path.stat().st_size == len(blob)  # the blob is kept


def test_bytes_are_counted_across_layers_and_the_partial_rootfs_removed(tmp_path):
    first = layer_of(tmp_path, bombs.zero_files(20), "first", complete=True)
    second = layer_of(tmp_path, bombs.zero_files(20), "second")  # same names: replacing files counts again
    cache = tmp_path / "rootfs"
    with pytest.raises(ImageLimitExceeded, match=r"more than max_image_bytes \(30 MiB\)"):
        unpack(cache, [first, second], max_bytes=30 * MiB)
    assert leftovers(cache) == []


def test_a_tiny_gnu_sparse_file_is_counted_by_its_real_size(tmp_path):
    blob = bombs.gnu_sparse(1 << 40)
    assert len(blob) < 1024
    layer = layer_of(tmp_path, blob, "sparse")
    cache = tmp_path / "rootfs"
    with pytest.raises(ImageLimitExceeded, match=r"more than max_image_bytes \(1 GiB\)"):
        unpack(cache, [layer], max_bytes=GiB)
    assert leftovers(cache) == []


def test_without_max_image_bytes_the_free_disk_is_the_cap(tmp_path):
    layer = layer_of(tmp_path, bombs.gnu_sparse(1 << 50), "sparse")  # 1 PiB: more than any test disk
    cache = tmp_path / "rootfs"
    with pytest.raises(ImageLimitExceeded) as info:
        unpack(cache, [layer])
    message = str(info.value)
    assert message.startswith(f"image {IMAGE} unpacks to more than the ")
    assert f"free in {cache}" in message and "set max_image_bytes in config.toml" in message
    assert leftovers(cache) == []


def test_files_symlinks_and_hard_links_count_against_max_image_files(tmp_path):
    files = layer_of(tmp_path, bombs.empty_files(60), "files", complete=True)
    links = layer_of(tmp_path, bombs.links(25), "links")  # 50 entries, in the layer above
    cache = tmp_path / "rootfs"
    with pytest.raises(ImageLimitExceeded) as info:
        unpack(cache, [files, links], max_files=100)
    assert str(info.value) == (f"image {IMAGE} has more than max_image_files (100) files: "
                               "raise max_image_files in config.toml")
    assert leftovers(cache) == []


def test_a_huge_pax_header_is_refused_without_being_buffered(tmp_path):
    blob = bombs.huge_pax(96)
    layer = layer_of(tmp_path, blob, "pax")
    root = tmp_path / "root"
    root.mkdir()
    tracemalloc.start()
    try:
        with pytest.raises(ImageLimitExceeded, match="tar headers .* are larger than 1 MiB; such layers are refused"):
            apply_layer(root, layer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Read ahead by the decompressing thread (a bounded queue) plus at most 1 MiB of header; tarfile
    # alone would have held the whole 96 MiB record.
    assert peak < 48 * MiB, f"peak {peak >> 20} MiB"
    assert list(root.iterdir()) == []


def test_a_huge_gnu_long_name_is_refused(tmp_path):
    layer = layer_of(tmp_path, bombs.long_name(4 * MiB), "longname")
    cache = tmp_path / "rootfs"
    with pytest.raises(ImageLimitExceeded) as info:
        unpack(cache, [layer])
    assert str(info.value).startswith(f"image {IMAGE}: layer {layer.digest}: an entry's tar headers")
    assert leftovers(cache) == []


def test_headers_up_to_the_bound_are_fine(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("f")
        info.pax_headers = {"SCHILY.xattr.user.big": "x" * 1_000_000}  # just under 1 MiB of records
        tf.addfile(info)
    layer = layer_of(tmp_path, gzip.compress(out.getvalue()), "pax-ok")
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(root, Layer(layer.path, layer.digest, layer.media_type))  # no diff_id: nothing made up
    assert (root / "f").is_file()


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs for the rootfs directory: a real filesystem that fills."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_unpacking_stops_before_the_disk_is_full(tmp_path, small_disk):
    layer = layer_of(tmp_path, bombs.zero_files(12, 8 * MiB), "fill")  # 96 MiB onto a 64 MiB disk
    with pytest.raises(ImageLimitExceeded) as info:
        unpack(small_disk, [layer], max_bytes=1 << 40)  # set far above the disk: the free-space check stops it
    assert "fell below the 6.4 MiB forklift keeps free: free disk space there" in str(info.value)
    assert leftovers(small_disk) == []
    assert _free(small_disk) > 60 * MiB  # the partial rootfs is gone


def test_default_cap_on_a_small_disk(tmp_path, small_disk):
    layer = layer_of(tmp_path, bombs.zero_bomb(80 * MiB), "big")
    with pytest.raises(ImageLimitExceeded, match=f"unpacks to more than the .* free in {small_disk}"):
        unpack(small_disk, [layer])
    assert leftovers(small_disk) == []


def test_no_room_for_even_the_compressed_layers(tmp_path, small_disk):
    blob = os.urandom(60 * MiB)  # the size check comes before the content is looked at
    layer = layer_of(tmp_path, blob, "incompressible")
    with pytest.raises(ImageLimitExceeded, match=r"needs at least 60 MiB to unpack"):
        unpack(small_disk, [layer])
    assert leftovers(small_disk) == []
