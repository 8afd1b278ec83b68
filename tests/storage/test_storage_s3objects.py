"""The embedded store as the S3 API sees it: lazy listings in S3's order, metadata that travels with
the file it describes, writes that appear whole or not at all, multipart assembly."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forklift.storage.embedded import EmbeddedBuckets
from forklift.storage.s3listing import list_page
from forklift.storage.s3multipart import MIN_PART, EntityTooSmall, InvalidPart, Multipart, NoSuchUpload
from forklift.storage.s3objects import ObjectMeta, S3Objects, UnstorableKey, check_key

KEYS = ["a", "a-b", "a0", "b/c", "b/d/e", "b/d/f", "b0", "c/x/y", "c-1", "c-2", "d", "é/1", "z z"]


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    for key in KEYS:
        path = tmp_path / "bkt" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key)
    return tmp_path / "bkt"


def walk_all(bucket: Path, **kwargs) -> list[str]:
    seen, after, after_prefix = [], "", False
    while True:
        page = list_page(bucket, after=after, after_prefix=after_prefix, max_keys=2, **kwargs)
        seen += [e.key for e in page.entries] + page.prefixes
        if not page.truncated:
            return seen
        after, after_prefix = page.last, page.last_is_prefix


def test_listing_is_in_utf8_byte_order_and_pages_resume_exactly(bucket):
    assert [e.key for e in list_page(bucket).entries] == sorted(KEYS, key=lambda k: k.encode())
    assert walk_all(bucket) == sorted(KEYS, key=lambda k: k.encode())


def test_delimiters_fold_common_prefixes_across_pages(bucket):
    page = list_page(bucket, delimiter="/")
    assert ([e.key for e in page.entries], page.prefixes) == (["a", "a-b", "a0", "b0", "c-1", "c-2", "d", "z z"],
                                                              ["b/", "c/", "é/"])
    assert sorted(walk_all(bucket, delimiter="/")) == sorted(page.prefixes + [e.key for e in page.entries])
    dashed = list_page(bucket, delimiter="-")
    assert dashed.prefixes == ["a-", "c-"] and "a-b" not in [e.key for e in dashed.entries]
    assert list_page(bucket, prefix="b/d", delimiter="/").prefixes == ["b/d/"]
    assert [e.key for e in list_page(bucket, prefix="b/d/").entries] == ["b/d/e", "b/d/f"]


def test_listing_skips_symlinks_temporaries_and_directories_it_does_not_need(bucket, tmp_path, monkeypatch):
    (bucket / "link").symlink_to(tmp_path)
    (bucket / "b" / ".forklift-tmp-xyz").write_text("in progress")
    scanned: list[str] = []
    real_scandir = os.scandir

    def scandir(path):
        scanned.append(os.path.relpath(path, bucket))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    page = list_page(bucket, max_keys=3)
    assert [e.key for e in page.entries] == ["a", "a-b", "a0"] and page.truncated
    assert scanned == [".", "b"]  # only as far as the key after the page (is it truncated?)
    scanned.clear()
    assert [e.key for e in list_page(bucket, after="b/d/e", max_keys=2).entries] == ["b/d/f", "b0"]
    assert "b/c" not in scanned and "c" not in scanned and "c/x" not in scanned
    assert "link" not in [e.key for e in list_page(bucket, prefix="l").entries]
    assert [e.key for e in list_page(bucket, prefix="b/").entries] == ["b/c", "b/d/e", "b/d/f"]


def test_keys_the_file_layout_cannot_hold_are_refused_by_name():
    for key in ("dir/", "../x", "a//b", "a/./b", "nul\0", "k" * 1025, "x/.forklift-tmp-1"):
        with pytest.raises(UnstorableKey):
            check_key(key)
    assert check_key("ünï/cødé +%") == ("ünï", "cødé +%")


def test_a_write_appears_whole_with_its_metadata_or_not_at_all(tmp_path):
    EmbeddedBuckets(tmp_path).make_bucket("bkt")
    objects = S3Objects(tmp_path)
    directory = objects.bucket_dir("bkt")
    assert directory is not None
    with pytest.raises(RuntimeError), objects.writing(directory, "new/dir/key") as pending:
        pending.file.write(b"half")
        raise RuntimeError("the client went away")
    assert objects.head(directory, "new/dir/key") is None and not (directory / "new").exists()
    with objects.writing(directory, "k") as pending:
        pending.file.write(b"data")
        assert objects.head(directory, "k") is None  # not before the rename
        objects.commit(pending, ObjectMeta("etag1", 0, datetime.now(tz=UTC), {"content-type": "text/csv"}, {"m": "1"}))
    meta = objects.head(directory, "k")
    assert meta is not None and (meta.etag, meta.content_type, meta.user, meta.size) == ("etag1", "text/csv",
                                                                                          {"m": "1"}, 4)
    (directory / "k").write_bytes(b"rewritten in place")  # the xattr no longer describes the file
    rewritten = objects.head(directory, "k")
    assert rewritten is not None and rewritten.etag != "etag1" and rewritten.content_type == "binary/octet-stream"
    assert [b.name for b in EmbeddedBuckets(tmp_path).list_buckets()] == ["bkt"]


def test_multipart_assembles_in_order_and_checks_its_parts(tmp_path):
    EmbeddedBuckets(tmp_path).make_bucket("bkt")
    objects = S3Objects(tmp_path)
    multipart = Multipart(objects)
    directory = objects.bucket_dir("bkt")
    assert directory is not None
    upload = multipart.create("bkt", "big", {}, {})
    etags = {}
    for number, fill in ((1, b"a" * MIN_PART), (2, b"b" * 3)):
        with multipart.writing_part(upload) as part:
            part.file.write(fill)
            etags[number] = hashlib.md5(fill).hexdigest()
            multipart.commit_part(upload, number, part, etags[number])
    with pytest.raises(InvalidPart):
        multipart.complete(upload, directory, [(1, etags[2])])
    with pytest.raises(EntityTooSmall):  # a small part that is not the last
        multipart.complete(upload, directory, [(2, etags[2]), (3, etags[2])])
    meta = multipart.complete(upload, directory, [(1, etags[1]), (2, etags[2])])
    assert meta.etag.endswith("-2") and (directory / "big").read_bytes() == b"a" * MIN_PART + b"bbb"
    assert not upload.directory.exists()
    assert [b.name for b in EmbeddedBuckets(tmp_path).list_buckets()] == ["bkt"]


def test_an_upload_aborted_while_it_completes_leaves_no_object(tmp_path, monkeypatch):
    EmbeddedBuckets(tmp_path).make_bucket("bkt")
    objects = S3Objects(tmp_path)
    multipart = Multipart(objects)
    directory = objects.bucket_dir("bkt")
    assert directory is not None
    upload = multipart.create("bkt", "k", {}, {})
    wanted = []
    for number, fill in ((1, b"a" * MIN_PART), (2, b"b")):
        with multipart.writing_part(upload) as part:
            part.file.write(fill)
            multipart.commit_part(upload, number, part, hashlib.md5(fill).hexdigest())
        wanted.append((number, hashlib.md5(fill).hexdigest()))
    real_copy = shutil.copyfileobj

    def copy_then_abort(source, destination, length):
        real_copy(source, destination, length)
        multipart.abort(upload)  # lands while the first part is copied: the second is gone by its turn

    monkeypatch.setattr(shutil, "copyfileobj", copy_then_abort)
    with pytest.raises(NoSuchUpload):
        multipart.complete(upload, directory, wanted)
    assert list(directory.iterdir()) == []


def test_a_delimiter_page_reads_each_directory_once(tmp_path, monkeypatch):
    """A common prefix per key restarted the walk from the top, reading the directory again each time:
    one page over 20000 keys took minutes."""
    bucket = tmp_path / "flat"
    bucket.mkdir()
    for n in range(300):
        (bucket / f"k{n:03d}-x").write_text("")
    (bucket / "sub").mkdir()
    (bucket / "sub" / "s-1").write_text("")
    scanned: list[str] = []
    real_scandir = os.scandir

    def scandir(path):
        scanned.append(os.path.relpath(path, bucket))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    page = list_page(bucket, delimiter="-", max_keys=1000)
    assert page.prefixes == [f"k{n:03d}-" for n in range(300)] + ["sub/s-"] and not page.truncated
    assert sorted(scanned) == [".", "sub"]


def model_listing(keys: list[str], prefix: str, delimiter: str) -> list[str]:
    """S3's listing of `keys` (keys and common prefixes in key order), by its definition."""
    shown: list[str] = []
    for key in sorted(k for k in keys if k.startswith(prefix)):
        at = key.find(delimiter, len(prefix)) if delimiter else -1
        item = key[: at + len(delimiter)] if at >= 0 else key
        if not shown or shown[-1] != item:
            shown.append(item)
    return shown


@pytest.mark.parametrize("seed", range(40))
def test_listings_match_s3s_definition_for_random_trees(tmp_path, seed):
    rng = random.Random(seed)
    keys: set[str] = set()
    while len(keys) < 40:
        key = "/".join("".join(rng.choice("ab-é") for _ in range(rng.randint(1, 3)))
                       for _ in range(rng.randint(1, 3)))
        if any(k.startswith(key + "/") or key.startswith(k + "/") for k in keys):
            continue  # an object and a prefix of another: unstorable
        keys.add(key)
    bucket = tmp_path / "random"
    for key in keys:
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        (bucket / key).write_text(key)
    for prefix in ("", "a", "a/", "b-", "é"):
        for delimiter in ("", "/", "-", "a", "b/"):
            listed, after, after_prefix = [], "", False
            while True:
                page = list_page(bucket, prefix, delimiter, after, 3, after_prefix)
                listed += sorted([e.key for e in page.entries] + page.prefixes)
                if not page.truncated:
                    break
                after, after_prefix = page.last, page.last_is_prefix
            assert listed == model_listing(sorted(keys), prefix, delimiter), (prefix, delimiter)
