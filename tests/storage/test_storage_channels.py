"""Training channels: S3Prefix, ManifestFile, ShardedByS3Key and file:// sources, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forklift.config import load_settings
from forklift.storage import ChannelError, ChannelSource, bucket_store, stage_channel


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def s3_source(uri: str, data_type: str = "S3Prefix", distribution: str = "FullyReplicated") -> dict:
    return {"S3DataSource": {"S3Uri": uri, "S3DataType": data_type, "S3DataDistributionType": distribution}}


@pytest.fixture
def dataset(backend, tmp_path: Path):
    for i in range(7):
        backend.put(f"datasets/train/part-{i}.csv", f"row {i}\n".encode(), tmp_path)
    backend.put("datasets/train/extra/info.txt", b"info", tmp_path)
    backend.put("datasets/validation/v.csv", b"v", tmp_path)
    return backend


def test_s3_prefix_fully_replicated(dataset, tmp_path: Path):
    dest = tmp_path / "channel"
    source = stage_channel(s3_source(dataset.uri("datasets/train/")), dest, settings=dataset.settings)
    assert source == ChannelSource(dest)
    staged = files_under(dest)
    assert sorted(staged) == ["extra/info.txt"] + [f"part-{i}.csv" for i in range(7)]
    assert staged["part-3.csv"] == b"row 3\n"


def test_sharded_by_s3_key_splits_objects_across_hosts(dataset, tmp_path: Path):
    uri = dataset.uri("datasets/train/")
    everything = stage_channel(s3_source(uri, distribution="ShardedByS3Key"), tmp_path / "one",
                               instance_count=1, settings=dataset.settings)
    assert len(files_under(everything.path)) == 8  # one instance: every object

    shards = [files_under(stage_channel(s3_source(uri, distribution="ShardedByS3Key"), tmp_path / f"host-{h}",
                                        instance_count=3, host_index=h, settings=dataset.settings).path)
              for h in range(3)]
    assert [len(s) for s in shards] == [3, 3, 2]
    names = [name for shard in shards for name in shard]
    assert sorted(names) == sorted(files_under(everything.path))  # disjoint, and nothing lost

    replicated = stage_channel(s3_source(uri), tmp_path / "rep", instance_count=3, host_index=2,
                               settings=dataset.settings)
    assert len(files_under(replicated.path)) == 8


def test_manifest_file(dataset, tmp_path: Path):
    manifest = [{"prefix": dataset.uri("datasets/")}, "train/part-1.csv", "validation/v.csv", "train/part-1.csv"]
    manifest_uri = dataset.put("manifests/train.manifest", json.dumps(manifest).encode(), tmp_path)
    source = stage_channel(s3_source(manifest_uri, "ManifestFile"), tmp_path / "m", settings=dataset.settings)
    assert files_under(source.path) == {"train/part-1.csv": b"row 1\n", "validation/v.csv": b"v"}

    sharded = [files_under(stage_channel(s3_source(manifest_uri, "ManifestFile", "ShardedByS3Key"),
                                         tmp_path / f"ms-{h}", instance_count=2, host_index=h,
                                         settings=dataset.settings).path) for h in range(2)]
    assert sharded == [{"train/part-1.csv": b"row 1\n"}, {"validation/v.csv": b"v"}]


@pytest.mark.parametrize("content, message", [
    (b"not json", "not valid JSON"),
    (b'["s3://b/x"]', "must be a JSON list"),
    (b'[{"prefix": "s3://data-bucket/datasets/"}]', "lists no objects"),
    (b'[{"prefix": "s3://data-bucket/datasets/"}, "../../escape"]', "'..'"),
    (b'[{"prefix": "s3://data-bucket/datasets/"}, "train/missing.csv"]', "no such object: s3://data-bucket/datasets/train/missing.csv"),
])
def test_bad_manifests_are_reported(dataset, tmp_path: Path, content: bytes, message: str):
    uri = dataset.put("manifests/bad.manifest", content, tmp_path)
    with pytest.raises(ChannelError, match=message):
        stage_channel(s3_source(uri, "ManifestFile"), tmp_path / "bad", settings=dataset.settings)


def test_errors_name_the_channel_uri(dataset, tmp_path: Path):
    with pytest.raises(ChannelError, match=r"no objects under s3://data-bucket/nothing/here/"):
        stage_channel(s3_source(dataset.uri("nothing/here/")), tmp_path / "c", settings=dataset.settings)
    with pytest.raises(ChannelError, match=r"channel s3://missing-bucket/p/: bucket 'missing-bucket' does not exist"):
        stage_channel(s3_source("s3://missing-bucket/p/"), tmp_path / "c", settings=dataset.settings)
    with pytest.raises(ChannelError, match="manifest s3://data-bucket/none.manifest does not exist"):
        stage_channel(s3_source(dataset.uri("none.manifest"), "ManifestFile"), tmp_path / "c",
                      settings=dataset.settings)
    with pytest.raises(ChannelError, match="AugmentedManifestFile"):
        stage_channel(s3_source(dataset.uri("x"), "AugmentedManifestFile"), tmp_path / "c", settings=dataset.settings)
    with pytest.raises(ChannelError, match="host index 3"):
        stage_channel(s3_source(dataset.uri("datasets/")), tmp_path / "c", instance_count=3, host_index=3,
                      settings=dataset.settings)


def test_s3_keys_with_dot_dot_never_leave_the_channel(s3_server: str, tmp_path: Path):
    # Only a real S3 server can hold such a key: the embedded store refuses it on upload.
    store = bucket_store(load_settings())
    store.make_bucket("hostile")
    store.client.put_object(Bucket="hostile", Key="evil/../../../escaped.txt", Body=b"x")
    assert [obj.key for obj in store.list("s3://hostile/evil/")] == ["evil/../../../escaped.txt"]  # kept verbatim
    with pytest.raises(ChannelError, match="'..' path component"):
        stage_channel(s3_source("s3://hostile/evil/"), tmp_path / "deep" / "channel")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_file_uri_sources_are_copied(storage_home: Path, tmp_path: Path):
    """A file:// channel under a file root is copied in every mode (FastFile too): binding the user's
    directory would let a symlink swapped in later lead the mount out of the root."""
    (storage_home / "config.toml").write_text(f'file_roots = ["{tmp_path}"]\n')
    local = tmp_path / "local-data"
    (local / "sub").mkdir(parents=True)
    (local / "a.csv").write_text("a")
    (local / "sub" / "b.csv").write_text("b")
    (tmp_path / "local-data-2").mkdir()
    (tmp_path / "local-data-2" / "not-mine.csv").write_text("no")

    copied = stage_channel(s3_source(f"file://{local}"), tmp_path / "copy")
    assert copied == ChannelSource(tmp_path / "copy")
    assert files_under(copied.path) == {"a.csv": b"a", "sub/b.csv": b"b"}  # a directory, not a name prefix

    fast = stage_channel(s3_source(f"file://{local}/"), tmp_path / "fast", input_mode="FastFile")
    assert fast == ChannelSource(tmp_path / "fast")
    assert files_under(fast.path) == {"a.csv": b"a", "sub/b.csv": b"b"}

    sharded = stage_channel(s3_source(f"file://{local}", distribution="ShardedByS3Key"), tmp_path / "shard",
                            instance_count=2, host_index=1, input_mode="FastFile")
    assert files_under(sharded.path) == {"sub/b.csv": b"b"}

    single = stage_channel(s3_source(str(local / "a.csv")), tmp_path / "single")
    assert files_under(single.path) == {"a.csv": b"a"}

    (tmp_path / "empty").mkdir()
    for mode in ("FastFile", "File"):
        with pytest.raises(ChannelError, match="no objects under"):
            stage_channel(s3_source(f"file://{tmp_path}/empty"), tmp_path / "c", input_mode=mode)
