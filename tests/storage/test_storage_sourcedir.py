"""`fetch_source_dir`: a script-mode code archive unpacked within bounds, from file:// under the roots or
the embedded store, the destination emptied first and removed whole on any refusal."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from forklift.cancel import Cancel, Cancelled
from forklift.config import load_settings
from forklift.storage import ArchiveBounds, OutsideFileRoots, UnsafeArchive, fetch_source_dir


def tar_gz(path: Path, *members: tuple[str, bytes | str]) -> Path:
    """Regular files (bytes) and hard links (str: the target's name)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.LNKTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def roots(storage_home: Path, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (storage_home / "config.toml").write_text(f'file_roots = ["{root}"]\n')
    return root


def test_a_file_uri_under_the_roots_is_unpacked_into_an_emptied_directory(roots: Path, tmp_path: Path):
    archive = tar_gz(roots / "sourcedir.tar.gz", ("train.py", b"print('hi')\n"), ("lib/util.py", b"X = 1\n"))
    dest = tmp_path / "job" / "code"
    dest.mkdir(parents=True)
    (dest / "stale.py").write_text("from an earlier attempt")
    fetch_source_dir(f"file://{archive}", dest, load_settings())
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["lib", "lib/util.py", "train.py"]
    assert not list(dest.parent.glob(".code*"))  # the downloaded archive is not kept


def test_a_file_uri_outside_the_roots_is_refused(roots: Path, tmp_path: Path):
    archive = tar_gz(tmp_path / "elsewhere.tar.gz", ("train.py", b""))
    with pytest.raises(OutsideFileRoots):
        fetch_source_dir(f"file://{archive}", tmp_path / "job" / "code", load_settings())
    assert not (tmp_path / "job" / "code").exists()


@pytest.mark.parametrize(("bounds", "refusal"), [
    (ArchiveBounds(max_bytes=1 << 20, max_entries=3), "more than 3 entries"),
    # a hard link is written out as a copy, so it counts again
    (ArchiveBounds(max_bytes=1500, max_entries=100), "unpacks to more than 1,500 bytes"),
])
def test_an_archive_past_its_bounds_is_refused_and_removed(roots: Path, tmp_path: Path, bounds, refusal):
    archive = tar_gz(roots / "big.tar.gz", ("a", b"x" * 1000), ("b", "a"), ("c", b""), ("d", b""))
    dest = tmp_path / "job" / "code"
    with pytest.raises(UnsafeArchive, match=refusal):
        fetch_source_dir(f"file://{archive}", dest, load_settings(), bounds=bounds)
    assert not dest.exists()


def test_a_stop_before_the_download_leaves_nothing(roots: Path, tmp_path: Path):
    archive = tar_gz(roots / "sourcedir.tar.gz", ("train.py", b""))
    stopped = Cancel()
    stopped.set()
    dest = tmp_path / "job" / "code"
    with pytest.raises(Cancelled):
        fetch_source_dir(f"file://{archive}", dest, load_settings(), stopped)
    assert list((tmp_path / "job").iterdir()) == []
