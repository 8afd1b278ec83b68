"""model.tar.gz: packing is relative and reproducible; extraction refuses anything hostile."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from forklift.storage import StorageError, UnsafeArchive, extract_tar_gz, pack_tar_gz


def make_model_dir(root: Path) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "model.pkl").write_bytes(b"\x80pickle" * 100)
    (root / "code" / "inference.py").write_text("def model_fn(d): ...\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("model.pkl", root / "latest.pkl")
    return root


def test_pack_extract_round_trip(tmp_path: Path):
    src = make_model_dir(tmp_path / "model")
    archive = pack_tar_gz(src, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert all(m.uid == 0 and m.uname == "" for m in tar.getmembers())
    assert names == ["code", "code/inference.py", "latest.pkl", "model.pkl", "run.sh"]  # no "./", no "model/"

    out = tmp_path / "opt-ml-model"
    assert extract_tar_gz(archive, out) == names
    assert (out / "model.pkl").read_bytes() == (src / "model.pkl").read_bytes()
    assert (out / "code" / "inference.py").read_text() == "def model_fn(d): ...\n"
    assert os.readlink(out / "latest.pkl") == "model.pkl"
    assert (out / "run.sh").stat().st_mode & 0o777 == 0o755


def test_pack_is_reproducible_and_skips_its_own_output(tmp_path: Path):
    src = make_model_dir(tmp_path / "model")
    first = pack_tar_gz(src, tmp_path / "a.tar.gz").read_bytes()
    second = pack_tar_gz(src, tmp_path / "b.tar.gz").read_bytes()
    assert first == second
    inside = pack_tar_gz(src, src / "model.tar.gz")  # the archive must not contain itself, nor its temp file
    with tarfile.open(inside) as tar:
        assert tar.getnames() == ["code", "code/inference.py", "latest.pkl", "model.pkl", "run.sh"]


def hostile_archive(path: Path, *members: tuple[str, str, str | bytes]) -> Path:
    """members: (kind, name, data-or-linkname) with kind file|dir|sym|hard|fifo|dev."""
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "dev": tarfile.CHRTYPE}[kind]
            info.linkname = payload if kind in ("sym", "hard") else ""
            tar.addfile(info)
    return path


@pytest.mark.parametrize("members, message", [
    ([("file", "/etc/evil", "x")], "absolute path"),
    ([("file", "../evil", "x")], "contains '..'"),
    ([("file", "ok/../../evil", "x")], "contains '..'"),
    ([("sym", "link", "/etc/passwd")], "is absolute"),
    ([("sym", "link", "../../outside")], "points outside"),
    ([("sym", "sub/link", "../..")], "points outside"),
    ([("sym", "s", "."), ("sym", "t", "s/s/s/.."), ("file", "t/evil", "x")], "outside"),
    ([("sym", "t", "s/s/s/.."), ("sym", "s", ".")], "resolves outside"),
    ([("hard", "h", "/etc/passwd")], "not an earlier file"),
    ([("fifo", "pipe", "")], "fifo"),
    ([("dev", "null", "")], "device node"),
])
def test_hostile_archives_are_refused(tmp_path: Path, members, message):
    archive = hostile_archive(tmp_path / "evil.tar.gz", *members)
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(UnsafeArchive, match=message):
        extract_tar_gz(archive, dest)
    assert not list((tmp_path / "a").rglob("evil")) and not (tmp_path / "evil").exists()
    assert not any(os.path.islink(p) and not os.path.realpath(p).startswith(str(dest)) for p in dest.rglob("*"))


def test_links_inside_the_archive_are_fine(tmp_path: Path):
    archive = hostile_archive(tmp_path / "ok.tar.gz", ("dir", "./", ""), ("file", "./data/w.bin", "weights"),
                              ("sym", "data/alias", "w.bin"), ("hard", "copy.bin", "data/w.bin"),
                              ("sym", "current", "data"), ("file", "current/through-link.txt", "ok"))
    out = tmp_path / "out"
    extract_tar_gz(archive, out)
    assert (out / "data" / "alias").read_text() == "weights"
    assert (out / "copy.bin").read_text() == "weights" and not os.path.islink(out / "copy.bin")
    assert (out / "data" / "through-link.txt").read_text() == "ok"


def test_a_file_that_is_not_an_archive(tmp_path: Path):
    (tmp_path / "model.tar.gz").write_bytes(b"definitely not gzip")
    with pytest.raises(StorageError, match="not a readable tar.gz"):
        extract_tar_gz(tmp_path / "model.tar.gz", tmp_path / "out")
