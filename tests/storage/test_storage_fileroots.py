"""`file_roots`: the server reaches host files only below the configured directories, without
following a symlink, both when a request is checked and when its data is used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forklift.config import ConfigError, load_settings, read_config_file
from forklift.storage import (
    ChannelError,
    HostFiles,
    OutsideFileRoots,
    StorageError,
    check_file_uri,
    stage_channel,
    store_for,
)


def channel(uri: str, data_type: str = "S3Prefix") -> dict:
    return {"S3DataSource": {"S3Uri": uri, "S3DataType": data_type}}


@pytest.fixture
def root(storage_home: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data-root"
    (root / "train" / "sub").mkdir(parents=True)
    (root / "train" / "a.csv").write_text("a")
    (root / "train" / "sub" / "b.csv").write_text("b")
    (storage_home / "config.toml").write_text(f'file_roots = ["{root}"]\n')
    return root


def test_no_file_roots_means_no_file_uris(storage_home: Path):
    settings = load_settings()
    for uri in ("file:///etc", "file:///etc/shadow", "/etc/passwd"):
        with pytest.raises(OutsideFileRoots, match=r"InputDataConfig\[0\].*file_roots in .*config.toml.*none"):
            check_file_uri(uri, settings, "InputDataConfig[0].DataSource.S3DataSource.S3Uri")
    with pytest.raises(ChannelError, match="file_roots"):
        stage_channel(channel("file:///etc"), storage_home / "stolen", input_mode="FastFile", settings=settings)
    assert not (storage_home / "stolen").exists()
    check_file_uri("s3://bucket/key", settings, "S3OutputPath")  # other schemes are not its business


def test_paths_under_a_root_are_used(root: Path, tmp_path: Path):
    settings = load_settings()
    check_file_uri(f"file://{root}/train", settings, "S3Uri")
    check_file_uri(f"file://{root}/not-yet/output", settings, "S3OutputPath")  # created when written
    staged = stage_channel(channel(f"file://{root}/train"), tmp_path / "staged", settings=settings)
    assert sorted(p.relative_to(staged.path).as_posix() for p in staged.path.rglob("*.csv")) == ["a.csv", "sub/b.csv"]
    store = store_for(f"file://{root}/out/model.tar.gz", settings)
    assert isinstance(store, HostFiles)
    store.upload(root / "train" / "a.csv", f"file://{root}/out/job/model.tar.gz")
    assert (root / "out" / "job" / "model.tar.gz").read_text() == "a"


def test_dot_dot_cannot_climb_out(root: Path, tmp_path: Path):
    settings = load_settings()
    (tmp_path / "secret.txt").write_text("host secret")
    for uri in (f"file://{root}/../secret.txt", f"file://{root}/train/../../secret.txt"):
        with pytest.raises(OutsideFileRoots, match="file_roots"):
            check_file_uri(uri, settings, "S3Uri")
        with pytest.raises(StorageError, match="file_roots"):
            HostFiles(settings).open_read(uri)


def test_a_symlink_below_the_root_is_refused(root: Path, tmp_path: Path):
    settings = load_settings()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text("host secret")
    os.symlink(outside, root / "link")
    os.symlink(outside / "shadow", root / "train" / "shadow-link")
    with pytest.raises(OutsideFileRoots, match="'link' is a symbolic link"):
        check_file_uri(f"file://{root}/link", settings, "S3Uri")
    with pytest.raises(ChannelError, match="'link' is a symbolic link"):
        stage_channel(channel(f"file://{root}/link"), tmp_path / "via-link", input_mode="FastFile", settings=settings)
    # a symlinked file inside a channel directory is not data: neither listed nor copied
    staged = stage_channel(channel(f"file://{root}/train"), tmp_path / "staged", settings=settings)
    assert not (staged.path / "shadow-link").exists()
    with pytest.raises(OutsideFileRoots, match="'shadow-link' is a symbolic link"):
        HostFiles(settings).open_read(f"file://{root}/train/shadow-link")


def test_a_symlink_swapped_in_after_the_check_leads_nowhere(root: Path, tmp_path: Path):
    settings = load_settings()
    uri = f"file://{root}/train"
    check_file_uri(uri, settings, "S3Uri")  # accepted, as at CreateTrainingJob
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text("host secret")
    os.rename(root / "train", root / "train-old")
    os.symlink(outside, root / "train")
    with pytest.raises(ChannelError, match="'train' is a symbolic link"):
        stage_channel(channel(uri), tmp_path / "staged", input_mode="FastFile", settings=settings)
    assert not list(tmp_path.joinpath("staged").rglob("shadow"))

    # writes too: an output directory swapped for a symlink is not written through
    (root / "out").mkdir()
    check_file_uri(f"file://{root}/out", settings, "S3OutputPath")
    os.rmdir(root / "out")
    os.symlink(outside, root / "out")
    with pytest.raises(OutsideFileRoots, match="'out' is a symbolic link"):
        HostFiles(settings).upload(root / "train-old" / "a.csv", f"file://{root}/out/model.tar.gz")
    assert sorted(os.listdir(outside)) == ["shadow"]


def test_a_manifest_cannot_name_a_prefix_outside_the_roots(root: Path, tmp_path: Path):
    (root / "manifest.json").write_text('[{"prefix": "file:///etc/"}, "passwd"]')
    with pytest.raises(ChannelError, match="file:///etc/passwd is not under .*file_roots"):
        stage_channel(channel(f"file://{root}/manifest.json", "ManifestFile"), tmp_path / "m",
                      settings=load_settings())
    assert not (tmp_path / "m" / "passwd").exists()


def test_the_command_line_acting_for_its_user_is_not_confined(storage_home: Path, tmp_path: Path):
    (tmp_path / "mine.txt").write_text("mine")
    store = store_for(str(tmp_path / "mine.txt"), load_settings(), as_user=True)
    assert not isinstance(store, HostFiles)
    with store.open_read(str(tmp_path / "mine.txt")) as stream:
        assert stream.read() == b"mine"


def test_file_roots_setting_is_checked(storage_home: Path):
    (storage_home / "config.toml").write_text('file_roots = ["data"]\n')
    with pytest.raises(ConfigError, match='file_roots = \\["data"\\]: "data" is not an absolute directory path'):
        read_config_file(storage_home)
    (storage_home / "config.toml").write_text('file_root = ["/data"]\n')
    with pytest.raises(ConfigError, match="did you mean file_roots"):
        read_config_file(storage_home)
