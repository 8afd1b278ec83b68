"""The S3 API of a real `forklift serve`, with the real clients: boto3 (path and virtual-host style),
s3transfer's multipart uploads and downloads, presigned URLs with httpx, the AWS CLI and s3fs.

The objects are the files `forklift buckets` keeps under `$FORKLIFT_HOME/buckets`.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import CREDENTIALS, REGION, Server, start_server, stop_server
from forklift import audit

VIRTUAL_SUFFIX = "s3.forklift.test"
AWS_CLI = Path("/work/main/.venv/sagemaker-sdk-v2/bin/aws")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory, database) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("s3-serve") / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'[server]\ns3_virtual_host_suffixes = ["{VIRTUAL_SUFFIX}"]\n')
    running = start_server(home, database=database)
    yield running
    stop_server(running)


def client(server: Server, **s3: object):
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60, s3=s3 or None)
    return boto3.client("s3", endpoint_url=server.url, region_name=REGION, config=config, **CREDENTIALS)


@pytest.fixture(scope="module")
def s3(served):
    return client(served)


def code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def bucket(s3, request) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.originalname.lower().removeprefix("test_"))[:40].strip("-")
    s3.create_bucket(Bucket=name)
    return name


def test_buckets_and_objects_with_their_metadata(s3, served, bucket):
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert code(lambda: s3.create_bucket(Bucket=bucket)) == "BucketAlreadyOwnedByYou"
    assert code(lambda: s3.create_bucket(Bucket="Not_Valid")) == "InvalidBucketName"
    s3.head_bucket(Bucket=bucket)
    put = s3.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"hello world", ContentType="text/plain",
                        CacheControl="max-age=60", Metadata={"owner": "team-a"})
    got = s3.get_object(Bucket=bucket, Key="dir/a.txt")
    assert got["Body"].read() == b"hello world"
    assert (got["ContentType"], got["CacheControl"], got["Metadata"]) == ("text/plain", "max-age=60",
                                                                          {"owner": "team-a"})
    assert got["ETag"] == put["ETag"] == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'
    assert (served.home / "buckets" / bucket / "dir" / "a.txt").read_bytes() == b"hello world"
    head = s3.head_object(Bucket=bucket, Key="dir/a.txt")
    assert (head["ContentLength"], head["ETag"]) == (11, put["ETag"])
    overridden = s3.get_object(Bucket=bucket, Key="dir/a.txt", ResponseContentType="application/x-test")
    assert overridden["ContentType"] == "application/x-test"
    assert code(lambda: s3.get_object(Bucket=bucket, Key="missing")) == "NoSuchKey"
    assert code(lambda: s3.head_object(Bucket=bucket, Key="missing")) == "404"
    assert code(lambda: s3.get_object(Bucket="no-such-bucket-here", Key="k")) == "NoSuchBucket"
    assert code(lambda: s3.delete_bucket(Bucket=bucket)) == "BucketNotEmpty"
    s3.delete_object(Bucket=bucket, Key="dir/a.txt")
    s3.delete_object(Bucket=bucket, Key="dir/a.txt")  # idempotent
    assert not (served.home / "buckets" / bucket / "dir").exists()
    s3.delete_bucket(Bucket=bucket)
    assert code(lambda: s3.head_bucket(Bucket=bucket)) == "404"


def test_ranges_and_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")["ETag"]
    ranged = s3.get_object(Bucket=bucket, Key="r", Range="bytes=2-4")
    assert (ranged["Body"].read(), ranged["ContentRange"], ranged["ResponseMetadata"]["HTTPStatusCode"]) == \
        (b"234", "bytes 2-4/10", 206)
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-3")["Body"].read() == b"789"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=7-")["Body"].read() == b"789"
    assert code(lambda: s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-20")) == "InvalidRange"
    assert code(lambda: s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)) == "304"
    assert code(lambda: s3.get_object(Bucket=bucket, Key="r", IfMatch='"0000"')) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag)["Body"].read() == b"0123456789"
    assert code(lambda: s3.put_object(Bucket=bucket, Key="r", Body=b"new", IfNoneMatch="*")) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="r")["Body"].read() == b"0123456789"
    s3.put_object(Bucket=bucket, Key="fresh", Body=b"first", IfNoneMatch="*")


def test_copy_and_delete_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/csv", Metadata={"m": "1"})
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    copied = s3.get_object(Bucket=bucket, Key="copied")
    assert (copied["Body"].read(), copied["ContentType"], copied["Metadata"]) == (b"payload", "text/csv", {"m": "1"})
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   ContentType="text/plain", Metadata={"m": "2"})
    replaced = s3.head_object(Bucket=bucket, Key="replaced")
    assert (replaced["ContentType"], replaced["Metadata"]) == ("text/plain", {"m": "2"})
    assert code(lambda: s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")) == "InvalidRequest"
    assert code(lambda: s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/nothing")) == "NoSuchKey"
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ("src", "copied", "gone")]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["copied", "gone", "src"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["replaced"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "replaced"}], "Quiet": True})
    assert "Deleted" not in quiet and s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_listing_pages_with_prefix_delimiter_and_continuation(s3, bucket):
    keys = ["a.txt", "b/1", "b/2", "b/c/3", "c-1", "c-2", "d/e/f", "z"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 4
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == keys
    folded = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/",
                                                               PaginationConfig={"PageSize": 2}))
    assert [o["Key"] for p in folded for o in p.get("Contents", [])] == ["a.txt", "c-1", "c-2", "z"]
    assert [c["Prefix"] for p in folded for c in p.get("CommonPrefixes", [])] == ["b/", "d/"]
    below = s3.list_objects_v2(Bucket=bucket, Prefix="b/", Delimiter="/")
    assert ([o["Key"] for o in below["Contents"]], [c["Prefix"] for c in below["CommonPrefixes"]]) == \
        (["b/1", "b/2"], ["b/c/"])
    dashes = s3.list_objects_v2(Bucket=bucket, Delimiter="-")
    assert [c["Prefix"] for c in dashes["CommonPrefixes"]] == ["c-"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, StartAfter="c-2")["Contents"]] == ["d/e/f", "z"]
    v1 = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3}))
    assert [o["Key"] for p in v1 for o in p.get("Contents", [])] == keys
    assert code(lambda: s3.list_objects_v2(Bucket=bucket, ContinuationToken="garbage!")) == "InvalidArgument"


def test_multipart_upload_to_a_bucket_named_endpoints(s3, served, tmp_path):
    if "endpoints" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="endpoints")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * MiB + 123))
    s3.upload_file(str(source), "endpoints", "x/invocations")  # s3transfer: 8 MiB threshold, two parts
    head = s3.head_object(Bucket="endpoints", Key="x/invocations")
    assert head["ETag"].endswith('-2"') and head["ContentLength"] == source.stat().st_size
    back = tmp_path / "back.bin"
    s3.download_file("endpoints", "x/invocations", str(back))
    assert back.read_bytes() == source.read_bytes()
    assert (served.home / "buckets" / "endpoints" / "x" / "invocations").read_bytes() == source.read_bytes()
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not any(name.startswith(".") for name in names)
    listing = subprocess.run([*_forklift(), "buckets", "ls"], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, FORKLIFT_HOME=str(served.home)))
    assert ".forklift-s3" not in listing.stdout


def _forklift() -> list[str]:
    import sys
    return [sys.executable, "-m", "forklift"]


def test_multipart_checks_parts_and_abort_leaves_nothing(s3, served, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/plain")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"a" * 100)["ETag"]
    last = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=2, Body=b"b" * 10)["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 100), (2, 10)]
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["mp"]

    def complete(*wanted):
        return s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in wanted]})

    assert code(lambda: complete((1, small), (2, last))) == "EntityTooSmall"
    assert code(lambda: complete((2, last), (1, small))) == "InvalidPartOrder"
    assert code(lambda: complete((1, '"00000000000000000000000000000000"'))) == "InvalidPart"
    assert code(lambda: s3.head_object(Bucket=bucket, Key="mp")) == "404"  # nothing visible before Complete
    done = complete((2, last))  # a single (last) part may be small
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"b" * 10
    assert done["ETag"].endswith('-1"')
    s3.put_object(Bucket=bucket, Key="source", Body=bytes(range(256)) * 100)
    copying = s3.create_multipart_upload(Bucket=bucket, Key="from-copy")["UploadId"]
    copied = s3.upload_part_copy(Bucket=bucket, Key="from-copy", UploadId=copying, PartNumber=1,
                                 CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange="bytes=256-511")
    s3.complete_multipart_upload(Bucket=bucket, Key="from-copy", UploadId=copying, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": copied["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="from-copy")["Body"].read() == bytes(range(256))
    other = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=other, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=other)
    assert code(lambda: s3.list_parts(Bucket=bucket, Key="aborted", UploadId=other)) == "NoSuchUpload"
    assert code(lambda: s3.head_object(Bucket=bucket, Key="aborted")) == "404"
    assert not (served.home / "buckets" / ".forklift-s3" / "uploads" / other).exists()
    left = s3.create_multipart_upload(Bucket=bucket, Key="left")["UploadId"]
    for key in ("mp", "source", "from-copy"):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)  # its uploads in progress end with it
    assert not (served.home / "buckets" / ".forklift-s3" / "uploads" / left).exists()


def test_presigned_get_and_put(s3, bucket):
    v4 = boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name=REGION,
                      config=Config(signature_version="s3v4"), **CREDENTIALS)
    for signer in (s3, v4):
        put_url = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "signed"})
        assert httpx.put(put_url, content=b"via presigned put").status_code == 200
        get_url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "signed"})
        got = httpx.get(get_url)
        assert (got.status_code, got.content) == (200, b"via presigned put")
    missing = httpx.get(v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"}))
    assert missing.status_code == 404 and b"<Code>NoSuchKey</Code>" in missing.content


def test_virtual_host_style(served, bucket):
    port = urlsplit(served.url).port
    for base in ("localhost", VIRTUAL_SUFFIX):
        virtual = boto3.client("s3", endpoint_url=f"http://{base}:{port}", region_name=REGION,
                               config=Config(s3={"addressing_style": "virtual"}), **CREDENTIALS)
        # <bucket>.<base> resolves nowhere here: connect to the server, keeping the signed Host header.
        virtual.meta.events.register("before-send", _to_loopback)
        virtual.put_object(Bucket=bucket, Key=f"{base}/k", Body=base.encode())
        assert virtual.get_object(Bucket=bucket, Key=f"{base}/k")["Body"].read() == base.encode()
        assert [o["Key"] for o in virtual.list_objects_v2(Bucket=bucket, Prefix=base)["Contents"]] == [f"{base}/k"]


def _to_loopback(request, **kwargs):
    parts = urlsplit(request.url)
    request.headers["Host"] = parts.netloc
    request.url = request.url.replace(parts.hostname, "127.0.0.1", 1)


def test_hostile_and_unstorable_keys(s3, served, bucket):
    assert code(lambda: s3.put_object(Bucket=bucket, Key="../escape", Body=b"x")) == "InvalidArgument"
    dotted = httpx.put(f"{served.url}/{bucket}/a/%2E/b", content=b"x")  # clients normalize a literal "./"
    assert dotted.status_code == 400 and b"<Code>InvalidArgument</Code>" in dotted.content
    assert code(lambda: s3.put_object(Bucket=bucket, Key="nul\0key", Body=b"x")) == "InvalidArgument"
    assert code(lambda: s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")) == "KeyTooLongError"
    assert code(lambda: s3.put_object(Bucket=bucket, Key="folder/", Body=b"")) == "InvalidArgument"
    s3.put_object(Bucket=bucket, Key="file", Body=b"x")
    assert code(lambda: s3.put_object(Bucket=bucket, Key="file/below", Body=b"x")) == "InvalidArgument"
    s3.put_object(Bucket=bucket, Key="prefix/below", Body=b"x")
    assert code(lambda: s3.put_object(Bucket=bucket, Key="prefix", Body=b"x")) == "InvalidArgument"
    s3.put_object(Bucket=bucket, Key="k" * 200 + "/ünï cødé +%.txt", Body=b"fine")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "k" * 200 + "/ünï cødé +%.txt" in listed
    assert not (served.home / "buckets" / "escape").exists()
    (served.home / "buckets" / bucket / "link").symlink_to("/etc")
    assert code(lambda: s3.get_object(Bucket=bucket, Key="link/passwd")) in ("InvalidArgument", "NoSuchKey")
    assert "link" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


def test_an_upload_cut_short_never_becomes_visible(s3, served, bucket):
    host, port = urlsplit(served.url).hostname, urlsplit(served.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"PUT /{bucket}/partial HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 100000\r\n\r\n"
                     .encode() + b"x" * 50000)
    s3.put_object(Bucket=bucket, Key="marker", Body=b"after")  # the server has seen the disconnect by now
    assert code(lambda: s3.head_object(Bucket=bucket, Key="partial")) == "404"
    assert sorted(p.name for p in (served.home / "buckets" / bucket).iterdir()) == ["marker"]


def test_xml_bodies_are_bounded_and_refuse_dtds(served, bucket):
    entities = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete><Object><Key>&e;</Key></Object>'
                b'</Delete>')
    for body in (entities, b"<Delete><Object><Key>unclosed", b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001
                 + b"</Delete>"):
        refused = httpx.post(f"{served.url}/{bucket}?delete", content=body)
        assert refused.status_code == 400 and b"<Code>MalformedXML</Code>" in refused.content
    too_big = httpx.post(f"{served.url}/{bucket}?delete", content=b" " * (1024 * 1024 + 1))
    assert too_big.status_code == 400 and b"<Code>MaxMessageLengthExceeded</Code>" in too_big.content


def test_unknown_sub_resources_are_not_implemented(s3, bucket):
    assert code(lambda: s3.get_bucket_acl(Bucket=bucket)) == "NotImplemented"
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") is None  # us-east-1
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_a_bucket_named_ping_and_the_health_check_side_by_side(s3, served):
    if "ping" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="ping")
    s3.put_object(Bucket="ping", Key="pong", Body=b"!")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="ping")["Contents"]] == ["pong"]
    assert httpx.get(served.url + "/ping").json()["status"] == "Healthy"


def test_mutating_calls_are_audited_without_bodies(s3, served, bucket):
    s3.put_object(Bucket=bucket, Key="audited", Body=b"secret-body-bytes")
    s3.delete_object(Bucket=bucket, Key="audited")
    records = [r for r in audit.read(served.home) if isinstance(r, dict) and r.get("operation", "").startswith("s3:")]
    mine = [(r["operation"], r["outcome"]) for r in records if r.get("resource") == f"arn:aws:s3:::{bucket}/audited"]
    assert mine == [("s3:PutObject", "ok"), ("s3:DeleteObject", "ok")]
    assert not any("secret-body-bytes" in str(r) for r in records)


def test_aws_cli_cp_recursive_sync_and_ls(served, bucket, tmp_path):
    if not AWS_CLI.exists():
        pytest.skip(f"the AWS CLI v1 is not installed at {AWS_CLI}")
    tree = tmp_path / "tree"
    for name, size in (("a.txt", 10), ("sub/b.bin", 9 * MiB), ("sub/deeper/c.txt", 3)):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(os.urandom(size))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL_S3=served.url, AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"], AWS_DEFAULT_REGION=REGION,
               HOME=str(tmp_path))

    def aws(*args: str) -> str:
        done = subprocess.run([str(AWS_CLI), "s3", *args], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    aws("cp", "--recursive", str(tree), f"s3://{bucket}/up")
    for name in ("a.txt", "sub/b.bin", "sub/deeper/c.txt"):
        assert (served.home / "buckets" / bucket / "up" / name).read_bytes() == (tree / name).read_bytes()
    listed = aws("ls", "--recursive", f"s3://{bucket}/up/")
    assert {line.split()[-1] for line in listed.splitlines()} == {"up/a.txt", "up/sub/b.bin", "up/sub/deeper/c.txt"}
    assert "PRE sub/" in aws("ls", f"s3://{bucket}/up/")
    down = tmp_path / "down"
    aws("sync", f"s3://{bucket}/up", str(down))
    assert (down / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    (tree / "new.txt").write_text("added")
    synced = aws("sync", str(tree), f"s3://{bucket}/up")
    assert "new.txt" in synced and "b.bin" not in synced  # only what changed is uploaded


def test_s3fs_lists_and_opens(served, bucket, s3):
    s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed")
    s3.put_object(Bucket=bucket, Key="fs/one.txt", Body=b"first file")
    fs = s3fs.S3FileSystem(key=CREDENTIALS["aws_access_key_id"], secret=CREDENTIALS["aws_secret_access_key"],
                           client_kwargs={"endpoint_url": served.url, "region_name": REGION})
    assert fs.ls(f"{bucket}/fs") == [f"{bucket}/fs/one.txt"]
    with fs.open(f"{bucket}/fs/one.txt", "rb") as handle:
        assert handle.read() == b"first file"
    with fs.open(f"{bucket}/fs/two.txt", "wb") as handle:
        handle.write(b"written by s3fs")
    assert s3.get_object(Bucket=bucket, Key="fs/two.txt")["Body"].read() == b"written by s3fs"


def test_a_keyed_server_refuses_unsigned_s3_requests(launch):
    from test_api_keys import created_key, eventually

    server = launch()
    created_key(server.home, "--name", "s3")
    eventually(lambda: httpx.get(server.url + "/").status_code == 403)
    refused = httpx.put(server.url + "/some-bucket/key", content=b"x" * 1000)
    assert refused.status_code == 403 and b"<Code>AccessDenied</Code>" in refused.content
    assert refused.headers["content-type"] == "application/xml"
