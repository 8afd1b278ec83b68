"""`forklift buckets` through click's runner on both backends, and once as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from forklift.cli.buckets import buckets
from forklift.config import load_settings
from forklift.storage import bucket_store


def run(*args: str, exit_code: int = 0) -> str:
    result = CliRunner().invoke(buckets, list(args), catch_exceptions=False)
    assert result.exit_code == exit_code, result.output
    return result.output


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    root = tmp_path / "upload-me"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    return root


def test_cp_ls_rm_both_directions(backend, local_tree: Path, tmp_path: Path):
    assert run("mb", "s3://cli-bucket") == "make_bucket: cli-bucket\n"
    assert run("cp", str(local_tree / "a.txt"), "s3://cli-bucket/data/") == \
        f"upload: {local_tree}/a.txt to s3://cli-bucket/data/a.txt\n"
    out = run("cp", "--recursive", str(local_tree), "s3://cli-bucket/tree")
    assert out.splitlines() == [f"upload: {local_tree}/a.txt to s3://cli-bucket/tree/a.txt",
                                f"upload: {local_tree}/sub/b.txt to s3://cli-bucket/tree/sub/b.txt"]

    assert [line.split()[-1] for line in run("ls").splitlines()] == ["cli-bucket", "data-bucket"]
    assert [line.split() for line in run("ls", "s3://cli-bucket").splitlines()] == [["PRE", "data/"],
                                                                                  ["PRE", "tree/"]]
    listing = run("ls", "s3://cli-bucket/tree/").splitlines()
    assert listing[0].split()[-2:] == ["5", "a.txt"] and listing[1].split() == ["PRE", "sub/"]
    assert [line.split()[-1] for line in run("ls", "-r", "s3://cli-bucket/tree").splitlines()] == \
        ["tree/a.txt", "tree/sub/b.txt"]

    down = tmp_path / "down"
    down.mkdir()
    assert run("cp", "s3://cli-bucket/tree/sub/b.txt", str(down)) == \
        f"download: s3://cli-bucket/tree/sub/b.txt to {down}/b.txt\n"
    assert (down / "b.txt").read_text() == "beta"
    run("cp", "-r", "s3://cli-bucket/tree/", str(tmp_path / "tree-copy"))
    assert (tmp_path / "tree-copy" / "sub" / "b.txt").read_text() == "beta"
    assert run("cp", "s3://cli-bucket/data/a.txt", "s3://cli-bucket/copied/a2.txt") == \
        "copy: s3://cli-bucket/data/a.txt to s3://cli-bucket/copied/a2.txt\n"

    assert run("rm", "s3://cli-bucket/copied/a2.txt") == "delete: s3://cli-bucket/copied/a2.txt\n"
    assert run("rm", "-r", "s3://cli-bucket/tree").splitlines() == ["delete: s3://cli-bucket/tree/a.txt",
                                                                   "delete: s3://cli-bucket/tree/sub/b.txt"]
    assert run("ls", "-r", "s3://cli-bucket").split()[-1] == "data/a.txt"


def test_errors_are_one_line_and_non_zero(backend, local_tree: Path, tmp_path: Path):
    assert run("cp", "s3://data-bucket/absent.txt", str(tmp_path), exit_code=1) == \
        "Error: no such object: s3://data-bucket/absent.txt\n"
    assert run("rm", "s3://data-bucket/absent.txt", exit_code=1) == \
        "Error: no such object: s3://data-bucket/absent.txt\n"
    assert run("rm", "-r", "s3://data-bucket/none", exit_code=1) == "Error: no objects under s3://data-bucket/none/\n"
    assert "does not exist" in run("ls", "s3://missing-bucket/", exit_code=1)
    assert "lowercase letters" in run("mb", "s3://Bad_Name", exit_code=1)
    assert "already exists" in run("mb", "s3://data-bucket", exit_code=1)
    assert "add --recursive" in run("cp", str(local_tree), "s3://data-bucket/x", exit_code=2)
    assert "must be an s3:// URI" in run("cp", str(local_tree / "a.txt"), str(tmp_path / "x"), exit_code=2)
    assert "expected an s3:// URI" in run("rm", str(local_tree / "a.txt"), exit_code=2)


def test_buckets_as_a_real_subprocess(s3_server: str, local_tree: Path, tmp_path: Path):
    def forklift(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "forklift", "buckets", *args], capture_output=True, text=True,
                              env=os.environ.copy(), timeout=60)

    made = forklift("mb", "s3://proc-bucket")
    assert made.returncode == 0 and made.stdout == "make_bucket: proc-bucket\n", made.stderr
    up = forklift("cp", str(local_tree / "a.txt"), "s3://proc-bucket/in/a.txt")
    assert up.returncode == 0, up.stderr
    with bucket_store(load_settings()).open_read("s3://proc-bucket/in/a.txt") as stream:  # it reached the server
        assert stream.read() == b"alpha"
    missing = forklift("cp", "s3://proc-bucket/in/nope.txt", str(tmp_path / "nope.txt"))
    assert missing.returncode == 1 and missing.stderr == "Error: no such object: s3://proc-bucket/in/nope.txt\n"
