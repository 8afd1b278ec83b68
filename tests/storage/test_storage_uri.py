"""URI parsing and prefix → destination rules, without any store."""

from __future__ import annotations

import pytest

from forklift.storage import InvalidURI, parse_uri
from forklift.storage.base import relative_key


def test_parse_uri_forms(tmp_path, monkeypatch):
    assert parse_uri("s3://bucket/a/b.csv").bucket == "bucket"
    assert parse_uri("s3://bucket/a/b.csv").key == "a/b.csv"
    assert parse_uri("s3://bucket").key == ""
    assert parse_uri("file:///data/train/").key == "/data/train/"
    assert parse_uri("/data/x/../train").uri == "file:///data/train"
    monkeypatch.chdir(tmp_path)
    assert parse_uri("rel/dir/").key == f"{tmp_path}/rel/dir/"
    assert parse_uri("https://host/path/model.tar.gz?sig=1").uri == "https://host/path/model.tar.gz?sig=1"
    assert parse_uri("s3://bucket/dir").as_directory().uri == "s3://bucket/dir/"


@pytest.mark.parametrize("uri, message", [
    ("s3://", "missing bucket"), ("s3:///key", "missing bucket"), ("gs://b/k", "unsupported scheme"),
    ("file://host/path", "absolute path"), ("", "empty"),
])
def test_bad_uris(uri, message):
    with pytest.raises(InvalidURI, match=message):
        parse_uri(uri)


@pytest.mark.parametrize("prefix, key, expected", [
    ("data/", "data/a/b.csv", "a/b.csv"),
    ("data/train.csv", "data/train.csv", "train.csv"),
    ("data/train", "data/train/x.csv", "x.csv"),
    ("data/tr", "data/train.csv", "train.csv"),
    ("", "top.csv", "top.csv"),
    ("da", "data/x", "data/x"),
])
def test_relative_key(prefix, key, expected):
    assert relative_key(prefix, key) == expected
