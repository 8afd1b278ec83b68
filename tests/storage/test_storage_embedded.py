"""The embedded bucket store on disk: layout, escapes refused, atomic writes, endpoint selection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forklift.config import ConfigError, load_settings
from forklift.storage import (
    EmbeddedBuckets,
    HostFiles,
    InvalidBucketName,
    LocalFiles,
    NoSuchBucket,
    NoSuchKey,
    S3Backend,
    StorageError,
    UnsafeKey,
    bucket_store,
    s3_endpoint,
    store_for,
)


@pytest.fixture
def embedded(storage_home: Path) -> EmbeddedBuckets:
    store = bucket_store(load_settings())
    assert isinstance(store, EmbeddedBuckets)
    store.make_bucket("bkt")
    return store


def test_keys_are_files_under_home_buckets(embedded: EmbeddedBuckets, storage_home: Path, tmp_path: Path):
    (tmp_path / "f").write_bytes(b"x")
    embedded.upload(tmp_path / "f", "s3://bkt/deep/er/key.txt")
    path = storage_home / "buckets" / "bkt" / "deep" / "er" / "key.txt"
    assert path.read_bytes() == b"x"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in path.parent.iterdir()] == ["key.txt"]  # no temp file left behind

    embedded.delete("s3://bkt/deep/er/key.txt")
    assert list((storage_home / "buckets" / "bkt").iterdir()) == []  # empty "directories" go too


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "a/./b", "a//b", "./a"])
def test_keys_escaping_or_ambiguous_are_refused(embedded: EmbeddedBuckets, tmp_path: Path, key: str):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(UnsafeKey, match="path component"):
        embedded.upload(tmp_path / "f", f"s3://bkt/{key}")
    assert not (tmp_path.parent / "escape").exists()


def test_symlinks_inside_a_bucket_do_not_lead_out(embedded: EmbeddedBuckets, storage_home: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    bucket_dir = storage_home / "buckets" / "bkt"
    os.symlink(outside, bucket_dir / "link")
    os.symlink(outside / "secret", bucket_dir / "secret-link")
    (tmp_path / "f").write_bytes(b"x")

    assert embedded.list("s3://bkt/") == []
    assert not embedded.exists("s3://bkt/secret-link")
    with pytest.raises(NoSuchKey):
        embedded.open_read("s3://bkt/secret-link")
    with pytest.raises(UnsafeKey, match="outside its bucket"):
        embedded.open_read("s3://bkt/link/secret")
    with pytest.raises(UnsafeKey, match="outside its bucket"):
        embedded.upload(tmp_path / "f", "s3://bkt/link/planted")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_a_key_cannot_be_both_object_and_prefix(embedded: EmbeddedBuckets, tmp_path: Path):
    (tmp_path / "f").write_bytes(b"x")
    embedded.upload(tmp_path / "f", "s3://bkt/a")
    with pytest.raises(StorageError, match="parent of it is already stored"):
        embedded.upload(tmp_path / "f", "s3://bkt/a/b")
    embedded.upload(tmp_path / "f", "s3://bkt/d/e")
    with pytest.raises(StorageError, match="already use it as a prefix"):
        embedded.upload(tmp_path / "f", "s3://bkt/d")


def test_writes_need_an_existing_valid_bucket(embedded: EmbeddedBuckets, tmp_path: Path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(NoSuchBucket, match="forklift buckets mb s3://other"):
        embedded.upload(tmp_path / "f", "s3://other/key")
    with pytest.raises(InvalidBucketName, match="between 3 and 63"):
        embedded.upload(tmp_path / "f", "s3://ab/key")


@pytest.mark.parametrize("name, rule", [
    ("ab", "between 3 and 63"), ("a" * 64, "between 3 and 63"), ("My-Bucket", "lowercase letters"),
    ("under_score", "lowercase letters"), ("-start", "begin and end"), ("end.", "begin and end"),
    ("two..dots", "adjacent periods"), ("192.168.1.10", "IP address"), ("xn--punycode", "reserved prefix"),
    ("data-s3alias", "reserved suffix"),
])
def test_bucket_name_rules(embedded: EmbeddedBuckets, name: str, rule: str):
    with pytest.raises(InvalidBucketName, match=rule):
        embedded.make_bucket(name)


def test_endpoint_comes_from_env_then_config_toml(storage_home: Path, monkeypatch: pytest.MonkeyPatch):
    settings = load_settings()
    assert s3_endpoint(settings) is None
    (storage_home / "config.toml").write_text('s3_endpoint_url = "http://127.0.0.1:9000"\n')
    assert s3_endpoint(settings) == "http://127.0.0.1:9000"
    assert isinstance(store_for("s3://b/k", settings), S3Backend)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9001")
    assert s3_endpoint(settings) == "http://127.0.0.1:9001"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9002")
    assert s3_endpoint(settings) == "http://127.0.0.1:9002"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "127.0.0.1:9002")
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL_S3"):
        s3_endpoint(settings)
    assert isinstance(store_for("file:///tmp/x", settings), HostFiles)  # the server's: confined to file_roots
    assert isinstance(store_for("file:///tmp/x", settings, as_user=True), LocalFiles)
