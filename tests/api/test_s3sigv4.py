"""S3 head signatures: what a real boto3 client signs verifies against the key store without the body,
and every fault gets S3's code and status."""

from __future__ import annotations

import asyncio
import base64
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from fixtures.s3wire import WireRequest, boto3_requests, receiver, signed_head
from forklift.api.authn import KeyAuthenticator
from forklift.api.s3errors import S3Error
from forklift.api.s3payload import PayloadReader, SignedHead, authenticate_s3
from forklift.config import load_settings
from forklift.credentials.accesskeys import AccessKey, AccessKeys

POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AccessKeys:
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "home"))
    return AccessKeys(load_settings())


@pytest.fixture
def alice(keys: AccessKeys) -> AccessKey:
    return keys.create("alice")


def one(call: Any, key: AccessKey, **kwargs: Any) -> WireRequest:
    assert key.secret_access_key is not None
    [request] = boto3_requests(call, key.access_key_id, key.secret_access_key, **kwargs)
    return request


def refused(authenticator: Any, request: WireRequest | dict[str, Any], **kwargs: Any) -> S3Error:
    scope = request.scope() if isinstance(request, WireRequest) else request
    with pytest.raises(S3Error) as caught:
        authenticate_s3(authenticator, scope, **kwargs)
    return caught.value


# What boto3 signs.

@pytest.mark.parametrize("key_name", ["plain.txt", "dir/a b+c~ü//x/../y", "%41 percent", "sp ace/?&=#"])
@pytest.mark.parametrize("endpoint", ["https://s3.test", "http://s3.test"])
def test_put_object_verifies_without_its_body_then_decodes(keys: AccessKeys, alice: AccessKey, key_name: str,
                                              endpoint: str) -> None:
    request = one(lambda c: c.put_object(Bucket="b", Key=key_name, Body=b"x" * 100), alice, endpoint=endpoint)
    head = authenticate_s3(KeyAuthenticator(keys), request.scope())
    assert head.principal is not None and head.principal.name == "alice"
    assert head.payload == request.headers["X-Amz-Content-SHA256"]
    # Over HTTPS boto3 streams the body with a CRC32 trailer; over HTTP it signs the body's hash.
    expected = "STREAMING-UNSIGNED-PAYLOAD-TRAILER" if endpoint.startswith("https") else None
    assert head.payload == expected or len(head.payload) == 64
    assert head.seed_signature == request.headers["Authorization"].rpartition("Signature=")[2]
    assert head.stamp == request.headers["X-Amz-Date"]
    assert head.credential_scope == f"{head.stamp[:8]}/us-east-1/s3/aws4_request"
    data, reader = asyncio.run(_drain(PayloadReader(head, request.lower_headers(), max_bytes=1000), request.body))
    assert data == b"x" * 100 and reader.checksums == {"crc32": base64.b64encode(zlib.crc32(data).to_bytes(4, "big")
                                                                                 ).decode()}


async def _drain(reader: PayloadReader, body: bytes) -> tuple[bytes, PayloadReader]:
    return b"".join([piece async for piece in reader.read(receiver(body, range(0, len(body), 9)))]), reader


def test_queries_and_virtual_hosted_style(keys: AccessKeys, alice: AccessKey) -> None:
    authenticator = KeyAuthenticator(keys)
    requests = [
        one(lambda c: c.list_objects_v2(Bucket="b", Prefix="a b/", Delimiter="/", MaxKeys=5,
                                        StartAfter="ü"), alice),
        one(lambda c: c.create_multipart_upload(Bucket="b", Key="k"), alice),  # ?uploads, a key without a value
        one(lambda c: c.get_object(Bucket="b", Key="k", Range="bytes=0-1"), alice,
            config=Config(s3={"addressing_style": "virtual"})),
    ]
    for request in requests:
        assert authenticate_s3(authenticator, request.scope()).principal is not None


def test_the_keys_policy_travels_with_the_principal(keys: AccessKeys) -> None:
    bob = keys.create("bob", POLICY)
    head = authenticate_s3(KeyAuthenticator(keys), one(lambda c: c.head_bucket(Bucket="b"), bob).scope())
    assert head.principal is not None and head.principal.policy is not None


SIGV4 = Config(signature_version="s3v4", s3={"addressing_style": "path"})


def presigned_url(key: AccessKey, expires: int, config: Config = SIGV4) -> str:
    url: list[str] = []
    boto3_requests(lambda c: url.append(c.generate_presigned_url("get_object", {"Bucket": "b", "Key": "a b/ü"},
                                                                  ExpiresIn=expires)),
                   key.access_key_id, key.secret_access_key or "", config=config)
    return url[0]


def test_presigned_get(keys: AccessKeys, alice: AccessKey) -> None:
    authenticator = KeyAuthenticator(keys)
    url = [presigned_url(alice, 3600)]
    request = WireRequest("GET", url[0], {}, b"")
    head = authenticate_s3(authenticator, request.scope())
    assert head.principal is not None and head.payload == "UNSIGNED-PAYLOAD"
    # Good for its hour, however long ago it was signed; not a second longer.
    assert authenticate_s3(authenticator, request.scope(), now=time.time() + 3500).principal is not None
    error = refused(authenticator, request, now=time.time() + 3700)
    assert (error.code, error.status) == ("AccessDenied", 403) and "expired" in error.message
    tampered = WireRequest("GET", url[0].replace("a%20b", "a%20c"), {}, b"")
    assert (refused(authenticator, tampered).code, refused(authenticator, tampered).status) == (
        "SignatureDoesNotMatch", 403)


def test_presigned_for_longer_than_a_week(keys: AccessKeys, alice: AccessKey) -> None:
    error = refused(KeyAuthenticator(keys), WireRequest("GET", presigned_url(alice, 604801), {}, b""))
    assert (error.code, error.status) == ("AuthorizationQueryParametersError", 400)
    assert "604800" in error.message


def test_presigned_with_sigv2_names_the_fix(keys: AccessKeys, alice: AccessKey) -> None:
    # What boto3's generate_presigned_url makes for S3 without signature_version='s3v4'.
    url = presigned_url(alice, 3600, Config(s3={"addressing_style": "path"}))
    assert "AWSAccessKeyId=" in url
    error = refused(KeyAuthenticator(keys), WireRequest("GET", url, {}, b""))
    assert (error.code, error.status) == ("InvalidRequest", 400) and "s3v4" in error.message


# Faults, with S3's codes.

def test_wrong_secret(keys: AccessKeys, alice: AccessKey) -> None:
    [request] = boto3_requests(lambda c: c.head_bucket(Bucket="b"), alice.access_key_id, "not-the-secret")
    error = refused(KeyAuthenticator(keys), request)
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)


def test_unknown_access_key(keys: AccessKeys, alice: AccessKey) -> None:
    [request] = boto3_requests(lambda c: c.head_bucket(Bucket="b"), "FKIANOSUCHKEY0000000", "secret")
    error = refused(KeyAuthenticator(keys), request)
    assert (error.code, error.status) == ("InvalidAccessKeyId", 403)


def test_tampered_signed_headers(keys: AccessKeys, alice: AccessKey) -> None:
    authenticator = KeyAuthenticator(keys)
    request = one(lambda c: c.put_object(Bucket="b", Key="k", Body=b"x"), alice, endpoint="http://s3.test")
    for name, value in [("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"), ("Host", "other.test")]:
        tampered = WireRequest(request.method, request.url, {**request.headers, name: value}, b"")
        assert refused(authenticator, tampered).code == "SignatureDoesNotMatch"
    moved = WireRequest(request.method, request.url.replace("/b/k", "/b/K"), request.headers, b"")
    assert refused(authenticator, moved).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("offset", [-1000, 1000])
def test_clock_skew(keys: AccessKeys, alice: AccessKey, offset: int) -> None:
    request = one(lambda c: c.head_bucket(Bucket="b"), alice)
    error = refused(KeyAuthenticator(keys), request, now=time.time() + offset)
    assert (error.code, error.status) == ("RequestTimeTooSkewed", 403)
    assert error.fields["MaxAllowedSkewMilliseconds"] == "900000"


def test_anonymous_request_once_a_key_exists(keys: AccessKeys, alice: AccessKey) -> None:
    request = WireRequest("GET", "https://s3.test/b/k", {}, b"")
    error = refused(KeyAuthenticator(keys), request)
    assert (error.code, error.status) == ("AccessDenied", 403)


def test_sigv2_is_refused_with_the_fix(keys: AccessKeys, alice: AccessKey) -> None:
    request = WireRequest("GET", "https://s3.test/b/k", {"Authorization": f"AWS {alice.access_key_id}:c2ln"}, b"")
    error = refused(KeyAuthenticator(keys), request)
    assert (error.code, error.status) == ("InvalidRequest", 400) and "Signature Version 4" in error.message


def test_malformed_authorization(keys: AccessKeys, alice: AccessKey) -> None:
    request = one(lambda c: c.head_bucket(Bucket="b"), alice)
    authorization = request.headers["Authorization"]
    for mangled in (authorization.replace("SignedHeaders=", "Signed="),
                    authorization.replace("/aws4_request", "/aws5_request"),
                    authorization.replace("Credential=", "Credential=x/")):
        error = refused(KeyAuthenticator(keys), WireRequest("HEAD", request.url,
                                                            {**request.headers, "Authorization": mangled}, b""))
        assert (error.code, error.status) == ("AuthorizationHeaderMalformed", 400), mangled


def test_header_signed_without_a_payload_claim(keys: AccessKeys, alice: AccessKey) -> None:
    request = one(lambda c: c.head_bucket(Bucket="b"), alice)
    del request.headers["X-Amz-Content-SHA256"]
    error = refused(KeyAuthenticator(keys), request)
    assert (error.code, error.status) == ("InvalidRequest", 400) and "x-amz-content-sha256" in error.message


def test_unreadable_payload_claim(keys: AccessKeys, alice: AccessKey) -> None:
    assert alice.secret_access_key is not None
    request = signed_head("https://s3.test/b/k", {}, "sha256-of-nothing", alice.access_key_id,
                          alice.secret_access_key)
    error = refused(KeyAuthenticator(keys), request)
    assert (error.code, error.status) == ("InvalidArgument", 400)


# No key yet: the embedded default accepts anyone.

def test_without_keys_anything_passes(keys: AccessKeys) -> None:
    request = WireRequest("PUT", "https://s3.test/b/k", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"")
    assert authenticate_s3(KeyAuthenticator(keys), request.scope()) == SignedHead(None, "UNSIGNED-PAYLOAD")
    [signed] = boto3_requests(lambda c: c.head_bucket(Bucket="b"), "FKIAWHOEVER", "whatever")
    assert authenticate_s3(KeyAuthenticator(keys), signed.scope()).principal is None
    assert authenticate_s3(None, signed.scope()).principal is None
    sigv2 = WireRequest("GET", "https://s3.test/b/k", {"Authorization": "AWS FKIAWHOEVER:c2ln"}, b"")
    assert authenticate_s3(KeyAuthenticator(keys), sigv2.scope()).principal is None
