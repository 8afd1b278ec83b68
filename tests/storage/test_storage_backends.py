"""ObjectStore behaviour, identical for the embedded bucket store and a real S3 server (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forklift.storage import (
    BucketAlreadyExists,
    EmbeddedBuckets,
    InvalidBucketName,
    NoSuchBucket,
    NoSuchKey,
    S3Backend,
    copy_object,
    copy_tree,
    store_for,
)


def test_backend_is_chosen_by_endpoint(backend):
    expected = S3Backend if backend.kind == "s3" else EmbeddedBuckets
    assert isinstance(backend.store, expected)
    assert isinstance(store_for("s3://x/y", backend.settings), expected)


def test_upload_download_exists_open_read_delete(backend, tmp_path: Path):
    uri = backend.put("models/run-1/model.bin", b"weights" * 1000, tmp_path)
    assert backend.store.exists(uri)
    assert not backend.store.exists(backend.uri("models/run-1/other.bin"))

    dest = backend.store.download(uri, tmp_path / "out" / "model.bin")
    assert dest.read_bytes() == b"weights" * 1000
    with backend.store.open_read(uri) as stream:
        assert stream.read(7) == b"weights"
        assert len(stream.read()) == 7 * 999

    backend.store.delete(uri)
    assert not backend.store.exists(uri)
    backend.store.delete(uri)  # like S3: deleting a missing object is fine
    assert backend.store.list(backend.uri()) == []


def test_list_is_recursive_sorted_and_prefix_based(backend, tmp_path: Path):
    for key in ["train/b.csv", "train/a.csv", "train/sub/c.csv", "train2/d.csv", "test/e.csv"]:
        backend.put(key, key.encode(), tmp_path)
    keys = [obj.key for obj in backend.store.list(backend.uri("train"))]
    assert keys == ["train/a.csv", "train/b.csv", "train/sub/c.csv", "train2/d.csv"]
    listed = backend.store.list(backend.uri("train/"))
    assert [obj.key for obj in listed] == ["train/a.csv", "train/b.csv", "train/sub/c.csv"]
    assert listed[0].size == len("train/a.csv")
    assert listed[0].uri == backend.uri("train/a.csv")
    assert listed[0].last_modified.tzinfo is not None
    assert len(backend.store.list(backend.uri())) == 5


def test_download_prefix_keeps_keys_relative_to_the_prefix(backend, tmp_path: Path):
    for key in ["data/train/a.csv", "data/train/nested/b.csv", "data/train.csv"]:
        backend.put(key, key.encode(), tmp_path)

    dest = tmp_path / "dir-prefix"
    backend.store.download_prefix(backend.uri("data/train/"), dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == \
        ["a.csv", "nested/b.csv"]
    assert (dest / "nested" / "b.csv").read_bytes() == b"data/train/nested/b.csv"

    single = tmp_path / "single"
    assert backend.store.download_prefix(backend.uri("data/train.csv"), single) == [single / "train.csv"]

    partial = tmp_path / "partial"  # "data/train" matches both; the mid-name match keeps its whole name
    backend.store.download_prefix(backend.uri("data/train"), partial)
    assert sorted(p.relative_to(partial).as_posix() for p in partial.rglob("*") if p.is_file()) == \
        ["a.csv", "nested/b.csv", "train.csv"]


def test_upload_dir_then_copy_tree_and_copy_object(backend, tmp_path: Path):
    src = tmp_path / "model"
    (src / "code").mkdir(parents=True)
    (src / "model.pkl").write_bytes(b"pickle")
    (src / "code" / "inference.py").write_text("print('hi')\n")
    uploaded = backend.store.upload_dir(src, backend.uri("jobs/j1/model"))
    assert uploaded == [backend.uri("jobs/j1/model/code/inference.py"), backend.uri("jobs/j1/model/model.pkl")]

    pairs = copy_tree(backend.uri("jobs/j1/model"), backend.uri("jobs/j2/model/"), backend.settings)
    assert sorted(dst for _, dst in pairs) == [backend.uri("jobs/j2/model/code/inference.py"),
                                                backend.uri("jobs/j2/model/model.pkl")]
    copy_object(backend.uri("jobs/j2/model/model.pkl"), backend.uri("copied.pkl"), backend.settings)
    copy_object(backend.uri("copied.pkl"), str(tmp_path / "back.pkl"), backend.settings)
    assert (tmp_path / "back.pkl").read_bytes() == b"pickle"


def test_missing_bucket_and_key_are_named(backend, tmp_path: Path):
    with pytest.raises(NoSuchBucket, match="'no-such-bucket' does not exist"):
        backend.store.list("s3://no-such-bucket/x")
    with pytest.raises(NoSuchBucket):
        backend.store.download("s3://no-such-bucket/x", tmp_path / "x")
    with pytest.raises(NoSuchBucket):
        (tmp_path / "f").write_text("f")
        backend.store.upload(tmp_path / "f", "s3://no-such-bucket/f")
    with pytest.raises(NoSuchKey, match="no such object: s3://data-bucket/absent"):
        backend.store.download(backend.uri("absent"), tmp_path / "absent")
    with pytest.raises(NoSuchKey):
        backend.store.open_read(backend.uri("absent"))
    assert not (tmp_path / "absent").exists()
    assert not backend.store.exists("s3://no-such-bucket/x")


def test_buckets_are_listed_made_once_and_named_by_s3_rules(backend):
    backend.store.make_bucket("second.bucket-2")
    assert [b.name for b in backend.store.list_buckets()] == ["data-bucket", "second.bucket-2"]
    with pytest.raises(BucketAlreadyExists):
        backend.store.make_bucket("data-bucket")
    with pytest.raises(InvalidBucketName, match="lowercase letters, digits"):
        backend.store.make_bucket("Upper_Case")
