"""The S3 API of a real `forklift serve` under attack: names that try to leave the bucket store, numbers
past every bound, signatures for another service or another key, and policies a request tries to get
round; the answers are S3's XML errors, never a 500, a traceback or a host path."""

from __future__ import annotations

import json
import re
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from test_api_keys import NO_RETRY, REGION, created_key, eventually

from conftest import Server, start_server, stop_server

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def served(tmp_path_factory, database) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("s3-hostile") / "home"
    home.mkdir()
    running = start_server(home, database=database)
    yield running
    stop_server(running)


@pytest.fixture
def bucket(served, request) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.originalname.lower().removeprefix("test_"))[:40].strip("-")
    assert httpx.put(f"{served.url}/{name}").status_code == 200
    return name


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.headers.get("content-type")) == (status, "application/xml"), \
        response.content
    assert f"<Code>{code}</Code>".encode() in response.content


def upload_id(response: httpx.Response) -> str:
    found = re.search(rb"<UploadId>([^<]*)</UploadId>", response.content)
    assert found, response.content
    return found.group(1).decode()


def test_a_key_component_longer_than_a_file_name_is_refused_not_a_500(served, bucket):
    url = f"{served.url}/{bucket}"
    long = "x" * 256
    for response in (httpx.put(f"{url}/dir/{long}", content=b"x"), httpx.get(f"{url}/{long}"),
                     httpx.post(f"{url}/{long}?uploads")):
        refused(response, 400, "InvalidArgument")
        assert b"255 bytes" in response.content
    assert httpx.head(f"{url}/{long}").status_code == 400
    assert httpx.delete(f"{url}/{long}").status_code == 204  # never stored, so already deleted
    fits = "y" * 255
    assert httpx.put(f"{url}/{fits}/{fits}", content=b"fine").status_code == 200
    assert httpx.get(f"{url}/{fits}/{fits}").content == b"fine"
    assert sorted(p.name for p in (served.home / "buckets" / bucket).iterdir()) == [fits]


def test_numbers_past_every_bound_are_s3_errors_not_500s(served, bucket):
    url = f"{served.url}/{bucket}"
    huge = "9" * 5000  # past what int() parses
    for query in ("max-keys=%C2%B2", f"max-keys={huge}", "max-keys=-1"):
        refused(httpx.get(f"{url}?{query}"), 400, "InvalidArgument")
    assert httpx.put(f"{url}/r", content=b"0123456789").status_code == 200
    for ranges in (f"bytes=0-{huge}", "bytes=" + ",".join(["0-1"] * 1000), "bytes=\u0663-"):
        whole = httpx.get(f"{url}/r", headers={"Range": ranges.encode()})
        assert (whole.status_code, whole.content) == (200, b"0123456789")  # a range S3 cannot use is ignored
    assert httpx.get(f"{url}/r", headers={"Range": "bytes=8-99999999999999999"}).content == b"89"
    refused(httpx.put(f"{url}/d", content=b"x", headers={"x-amz-decoded-content-length": b"\xb2",
                                                         "content-encoding": "aws-chunked"}), 400, "InvalidArgument")
    uid = upload_id(httpx.post(f"{url}/m?uploads"))
    for number in ("0", "10001", "-1", "1.5", huge, "%C2%B2", "%01"):
        refused(httpx.put(f"{url}/m?uploadId={uid}&partNumber={number}", content=b"x"), 400, "InvalidArgument")
    for number in (huge, "\u0663", ""):
        body = (f"<CompleteMultipartUpload><Part><PartNumber>{number}</PartNumber><ETag>x</ETag></Part>"
                "</CompleteMultipartUpload>").encode()
        refused(httpx.post(f"{url}/m?uploadId={uid}", content=body), 400, "MalformedXML")
    for query in ("part-number-marker=%C2%B2", f"max-parts={huge}"):
        assert httpx.get(f"{url}/m?uploadId={uid}&{query}").status_code == 200
    shown = httpx.get(f"{url}/m?uploadId={uid}&max-parts=0")
    assert b"<MaxParts>0</MaxParts>" in shown.content
    refused(httpx.put(f"{url}/m?uploadId={uid}&partNumber=1",
                      headers={"x-amz-copy-source": f"/{bucket}/r", "x-amz-copy-source-range": f"bytes=0-{huge}"}),
            400, "InvalidArgument")


def test_upload_ids_that_climb_out_name_no_upload(served, bucket):
    url = f"{served.url}/{bucket}"
    uploads = served.home / "buckets" / ".forklift-s3" / "uploads"
    uid = upload_id(httpx.post(f"{url}/m?uploads"))
    for hostile in ("../../../x", f"{uid}/..", f"..%2F{uid}", "%00" + uid, "."):
        refused(httpx.put(f"{url}/m?uploadId={hostile}&partNumber=1", content=b"x"), 404, "NoSuchUpload")
        refused(httpx.delete(f"{url}/m?uploadId={hostile}"), 404, "NoSuchUpload")
    assert (uploads / uid / "upload.json").exists()
    # What the error echoes back stays XML a client can parse, whatever the request sent.
    for echoed in (f"{url}/m?uploadId=%01%0b", f"{url}/m?uploadId={uid}&partNumber=%01"):
        answer = httpx.put(echoed, content=b"x")
        assert answer.status_code in (400, 404)
        assert ET.fromstring(answer.content).find("Code") is not None
    # Another key's upload is no upload of this key.
    refused(httpx.put(f"{url}/other?uploadId={uid}&partNumber=1", content=b"x"), 404, "NoSuchUpload")
    refused(httpx.put(f"{served.url}/.forklift-s3"), 400, "InvalidBucketName")
    refused(httpx.put(f"{served.url}/.forklift-s3/uploads", content=b"x"), 404, "NoSuchBucket")
    refused(httpx.get(f"{served.url}/.forklift-s3/uploads/{uid}/upload.json"), 404, "NoSuchBucket")
    assert b".forklift-s3" not in httpx.get(served.url + "/").content


def test_a_symlinked_directory_planted_in_a_bucket_is_never_followed_out(served, bucket, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host file")
    (served.home / "buckets" / bucket / "link").symlink_to(outside)
    url = f"{served.url}/{bucket}"
    refused(httpx.put(f"{url}/link/planted", content=b"x"), 400, "InvalidArgument")
    refused(httpx.put(f"{url}/link/new/planted", content=b"x"), 400, "InvalidArgument")
    refused(httpx.get(f"{url}/link/secret"), 400, "InvalidArgument")
    uid = upload_id(httpx.post(f"{url}/link/via-multipart?uploads"))
    etag = httpx.put(f"{url}/link/via-multipart?uploadId={uid}&partNumber=1", content=b"part").headers["etag"]
    body = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>" \
           "</CompleteMultipartUpload>"
    refused(httpx.post(f"{url}/link/via-multipart?uploadId={uid}", content=body.encode()), 400, "InvalidArgument")
    refused(httpx.put(f"{url}/copied", headers={"x-amz-copy-source": f"/{bucket}/link/secret"}), 400,
            "InvalidArgument")
    assert httpx.delete(f"{url}/link/secret").status_code in (204, 400)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"host file"
    (served.home / "buckets" / bucket / "file-link").symlink_to(outside / "secret")
    assert httpx.get(f"{url}/file-link").status_code == 404
    assert httpx.put(f"{url}/file-link", content=b"replaces the link, not its target").status_code == 200
    assert (outside / "secret").read_bytes() == b"host file"


def test_errors_name_no_host_path_and_a_500_says_nothing(served, bucket):
    home = str(served.home).encode()
    url = f"{served.url}/{bucket}"
    httpx.put(f"{url}/file", content=b"x")
    answers = [httpx.put(f"{url}/file/below", content=b"x"), httpx.put(f"{url}/file/{'z' * 300}", content=b"x"),
               httpx.get(f"{url}/../../etc/passwd"), httpx.get(f"{url}/%2e%2e/%2e%2e/etc/passwd"),
               httpx.get(f"{url}/a%5c..%5c..%5cetc"), httpx.post(f"{url}?delete", content=b"<Delete>")]
    for answer in answers:
        assert home not in answer.content and b"Traceback" not in answer.content, answer.content
        assert answer.status_code < 500


def test_racing_writers_of_one_key_leave_one_whole_object(served, bucket):
    url = f"{served.url}/{bucket}"
    bodies = [bytes([65 + n]) * (256 * 1024) for n in range(8)]
    exclusive: list[int] = []
    plain: list[int] = []

    def put(body: bytes, into: list[int], headers: dict[str, str]) -> None:
        with httpx.Client(timeout=60) as http:
            into.append(http.put(f"{url}/{'once' if headers else 'raced'}", content=body, headers=headers).status_code)

    threads = [threading.Thread(target=put, args=(body, exclusive, {"If-None-Match": "*"})) for body in bodies]
    threads += [threading.Thread(target=put, args=(body, plain, {})) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(exclusive) == [200] + [412] * 7 and plain == [200] * 8
    assert httpx.get(f"{url}/once").content in bodies
    assert httpx.get(f"{url}/raced").content in bodies
    assert sorted(p.name for p in (served.home / "buckets" / bucket).iterdir()) == ["once", "raced"]


def test_a_part_cut_short_is_no_part(served, bucket):
    url = f"{served.url}/{bucket}"
    uid = upload_id(httpx.post(f"{url}/m?uploads"))
    host, port = urlsplit(served.url).hostname, urlsplit(served.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"PUT /{bucket}/m?uploadId={uid}&partNumber=1 HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Content-Length: 100000\r\n\r\n".encode() + b"x" * 50000)
    assert httpx.put(f"{url}/marker", content=b"after").status_code == 200  # the cut was seen by now
    listed = httpx.get(f"{url}/m?uploadId={uid}")
    assert listed.status_code == 200 and b"<Part>" not in listed.content
    upload_dir = served.home / "buckets" / ".forklift-s3" / "uploads" / uid
    assert sorted(p.name for p in upload_dir.iterdir()) == ["upload.json"]


def test_the_deepest_key_lists_and_deletes(served, bucket):
    url = f"{served.url}/{bucket}"
    deep = "/".join(["d"] * 512)  # 1023 bytes: as deep as a key may go
    assert httpx.put(f"{url}/{deep}", content=b"deep").status_code == 200
    listed = httpx.get(f"{url}?list-type=2&max-keys=5")
    assert listed.status_code == 200 and f"<Key>{deep}</Key>".encode() in listed.content
    folded = httpx.get(f"{url}?list-type=2&delimiter=/&prefix=" + "d/" * 300)
    assert b"<CommonPrefixes>" in folded.content
    assert httpx.delete(f"{url}/{deep}").status_code == 204
    assert list((served.home / "buckets" / bucket).iterdir()) == []


# --- a server with access keys -----------------------------------------------------------------------

POLICIES = {
    "reader": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::open-data/*"}],
    "keeper": [{"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::kept", "arn:aws:s3:::kept/*"]},
               {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::kept/protected/*"}],
    "sweeper": [{"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::kept/tmp/*"}],
}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, databases) -> Iterator[tuple[Server, dict[str, tuple[str, str]]]]:
    with databases.fresh() as database:  # one server per database: `served` has the module's
        server = start_server(tmp_path_factory.mktemp("s3-keyed") / "home", database=database)
        try:
            keys = _keys(server)
            yield server, keys
        finally:
            stop_server(server)


def _keys(server: Server) -> dict[str, tuple[str, str]]:
    keys = {"full": created_key(server.home, "--name", "full")}
    for name, statements in POLICIES.items():
        path = server.home / f"{name}.json"
        path.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}))
        keys[name] = created_key(server.home, "--name", name, "--policy", str(path))
    eventually(lambda: httpx.get(server.url + "/").status_code == 403)
    admin = s3_client(server, keys["full"])
    for name in ("open-data", "private", "kept"):
        admin.create_bucket(Bucket=name)
    admin.put_object(Bucket="open-data", Key="a", Body=b"open")
    admin.put_object(Bucket="private", Key="secret", Body=b"private bytes")
    return keys


def s3_client(server: Server, key: tuple[str, str]):
    return boto3.client("s3", endpoint_url=server.url, region_name=REGION,
                        config=NO_RETRY.merge(Config(signature_version="s3v4")),
                        aws_access_key_id=key[0], aws_secret_access_key=key[1])


def error(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def signed(method: str, url: str, key: tuple[str, str], service: str, headers: dict[str, str] | None = None,
           body: bytes = b"") -> httpx.Response:
    request = AWSRequest(method, url, data=body, headers=dict(headers or {}))
    request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    SigV4Auth(Credentials(*key), service, REGION).add_auth(request)
    return httpx.request(method, url, headers=dict(request.headers.items()), content=body)


def test_a_policy_for_one_bucket_reaches_no_other(keyed):
    server, keys = keyed
    reader = s3_client(server, keys["reader"])
    assert reader.get_object(Bucket="open-data", Key="a")["Body"].read() == b"open"
    assert error(lambda: reader.get_object(Bucket="private", Key="secret")) == "AccessDenied"
    assert error(lambda: reader.list_objects_v2(Bucket="open-data")) == "AccessDenied"
    assert error(lambda: reader.put_object(Bucket="open-data", Key="b", Body=b"x")) == "AccessDenied"
    assert error(lambda: reader.delete_object(Bucket="open-data", Key="a")) == "AccessDenied"
    assert error(lambda: reader.list_buckets()) == "AccessDenied"
    assert error(lambda: reader.create_multipart_upload(Bucket="open-data", Key="m")) == "AccessDenied"
    keeper = s3_client(server, keys["keeper"])
    # A copy needs s3:GetObject on its source, whatever the destination allows.
    assert error(lambda: keeper.copy_object(Bucket="kept", Key="stolen",
                                            CopySource={"Bucket": "private", "Key": "secret"})) == "AccessDenied"
    upload = keeper.create_multipart_upload(Bucket="kept", Key="stolen")["UploadId"]
    assert error(lambda: keeper.upload_part_copy(Bucket="kept", Key="stolen", UploadId=upload, PartNumber=1,
                                                 CopySource={"Bucket": "private", "Key": "secret"})) == "AccessDenied"
    assert "Contents" not in keeper.list_objects_v2(Bucket="kept")


def test_delete_objects_asks_the_policy_about_every_key(keyed):
    server, keys = keyed
    admin, keeper = s3_client(server, keys["full"]), s3_client(server, keys["keeper"])
    for key in ("protected/a", "tmp/b", "plain"):
        admin.put_object(Bucket="kept", Key=key, Body=b"x")
    answer = keeper.delete_objects(Bucket="kept", Delete={"Objects": [{"Key": "protected/a"}, {"Key": "plain"}]})
    assert [d["Key"] for d in answer["Deleted"]] == ["plain"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("protected/a", "AccessDenied")]
    assert admin.get_object(Bucket="kept", Key="protected/a")["Body"].read() == b"x"
    sweeper = s3_client(server, keys["sweeper"])  # allowed below tmp/ only: those keys go, the others stay
    answer = sweeper.delete_objects(Bucket="kept", Delete={"Objects": [{"Key": "tmp/b"}, {"Key": "protected/a"}]})
    assert [d["Key"] for d in answer["Deleted"]] == ["tmp/b"]
    assert [e["Key"] for e in answer["Errors"]] == ["protected/a"]
    assert sorted(o["Key"] for o in admin.list_objects_v2(Bucket="kept")["Contents"]) == ["protected/a"]
    others = sweeper.delete_objects(Bucket="private", Delete={"Objects": [{"Key": "secret"}]})
    assert [e["Code"] for e in others["Errors"]] == ["AccessDenied"]
    assert admin.head_object(Bucket="private", Key="secret")["ContentLength"] == 13


def test_signatures_that_do_not_check_out_reach_nothing(keyed):
    server, keys = keyed
    secret_url = f"{server.url}/private/secret"
    assert httpx.get(secret_url).status_code == 403
    assert error(lambda: s3_client(server, (keys["full"][0], "wrong" * 8)).get_object(
        Bucket="private", Key="secret")) == "SignatureDoesNotMatch"
    assert error(lambda: s3_client(server, ("AKIAUNKNOWN000000000", "x" * 40)).get_object(
        Bucket="private", Key="secret")) == "InvalidAccessKeyId"
    presigned = s3_client(server, keys["reader"]).generate_presigned_url(
        "get_object", Params={"Bucket": "open-data", "Key": "a"}, ExpiresIn=60)
    assert httpx.get(presigned).content == b"open"
    parts = urlsplit(presigned)
    for tampered in (urlunsplit(parts._replace(path="/private/secret")),
                     presigned.replace("X-Amz-Expires=60", "X-Amz-Expires=604800"),
                     presigned.replace(keys["reader"][0], keys["full"][0])):
        answer = httpx.get(tampered)
        assert answer.status_code == 403 and b"private bytes" not in answer.content
    # Signed for SageMaker: never S3's, even when the Host names a bucket, so no S3 object is reached.
    dressed = signed("GET", secret_url, keys["full"], "sagemaker")
    assert b"private bytes" not in dressed.content
    # Signed for S3 (a valid signature) on SageMaker's route: S3 answers, so no SageMaker call is made.
    as_s3 = signed("POST", server.url + "/", keys["reader"], "s3",
                   {"X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"},
                   b"{}")
    assert as_s3.status_code in (403, 405) and as_s3.headers["content-type"] == "application/xml"
    assert b"TrainingJobSummaries" not in as_s3.content


def test_secrets_never_reach_an_answer_or_the_log(keyed):
    server, keys = keyed
    answers = [signed("GET", f"{server.url}/private/secret", (keys["reader"][0], keys["full"][1]), "s3"),
               signed("GET", f"{server.url}/private/secret", keys["reader"], "s3")]
    for answer in answers:
        assert answer.status_code == 403
        for _, secret in keys.values():
            assert secret.encode() not in answer.content
    logs = [p for p in Path(server.home).rglob("*.log") if p.is_file()] + [Path(server.home) / "audit.jsonl"]
    for path in logs:
        if path.exists():
            text = path.read_text(errors="replace")
            assert not any(secret in text for _, secret in keys.values()), path
