"""S3 request bodies decoded and checked as they stream: the bytes real boto3 sends, AWS's own signed-chunk
example, hand-framed signed chunks and trailers, and every way a body can lie about itself."""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.s3wire import WireRequest, boto3_requests, derive_key, receiver, seed_of, signed_chunks, signed_head
from forklift.api import checksums
from forklift.api.s3errors import S3Error
from forklift.api.s3payload import PayloadReader, SignedHead
from forklift.api.sigv4 import check_signature, read_head

KEY, SECRET = "FKIATESTKEY000000000", "test-secret"
MAX = 10 * 1024 * 1024
DATA = bytes(range(256)) * 40 + b"tail"


def read(head: SignedHead, headers: dict[str, str], body: bytes, cuts: Any = (), *, max_bytes: int = MAX,
         disconnect: bool = False) -> tuple[bytes, PayloadReader]:
    reader = PayloadReader(head, headers, max_bytes=max_bytes)

    async def drain() -> bytes:
        return b"".join([piece async for piece in reader.read(receiver(body, cuts, disconnect_after=disconnect))])

    return asyncio.run(drain()), reader


def refused(head: SignedHead, headers: dict[str, str], body: bytes, **kwargs: Any) -> S3Error:
    with pytest.raises(S3Error) as caught:
        read(head, headers, body, **kwargs)
    return caught.value


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def crc32(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


# What boto3 sends.

def boto3_put(endpoint: str = "https://s3.test", **kwargs: Any) -> WireRequest:
    [request] = boto3_requests(lambda c: c.put_object(Bucket="b", Key="k", Body=DATA, **kwargs), KEY, SECRET,
                               endpoint=endpoint)
    return request


def unkeyed(request: WireRequest) -> SignedHead:
    return SignedHead(None, request.headers.get("X-Amz-Content-SHA256", ""))


def test_boto3_put_over_https_streams_a_crc32_trailer() -> None:
    request = boto3_put()
    assert request.headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert request.headers["Content-Encoding"] == "aws-chunked"
    data, reader = read(unkeyed(request), request.lower_headers(), request.body, cuts=range(0, 20000, 997))
    assert data == DATA and reader.size == len(DATA)
    assert reader.md5_hex == hashlib.md5(DATA).hexdigest()
    assert reader.checksums == {"crc32": crc32(DATA)}
    assert reader.content_encoding is None


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32"])
def test_boto3_put_with_a_chosen_checksum(algorithm: str) -> None:
    request = boto3_put(ChecksumAlgorithm=algorithm, ContentEncoding="gzip")
    data, reader = read(unkeyed(request), request.lower_headers(), request.body)
    assert data == DATA
    assert list(reader.checksums) == [algorithm.lower()]
    assert reader.content_encoding == "gzip"  # the object's own, once aws-chunked is stripped


def test_boto3_put_over_http_signs_the_bodys_hash() -> None:
    request = boto3_put("http://s3.test", ContentMD5=b64(hashlib.md5(DATA).digest()))
    assert len(request.headers["X-Amz-Content-SHA256"]) == 64
    data, reader = read(unkeyed(request), request.lower_headers(), request.body, cuts=[1, 2, 3, 5000])
    assert data == DATA and reader.checksums == {"crc32": crc32(DATA)}

    error = refused(unkeyed(request), request.lower_headers(), request.body[:-1] + b"!")
    assert (error.code, error.status) == ("XAmzContentSHA256Mismatch", 400)


def test_boto3_upload_part() -> None:
    [request] = boto3_requests(lambda c: c.upload_part(Bucket="b", Key="k", UploadId="u", PartNumber=1, Body=DATA),
                               KEY, SECRET)
    data, reader = read(unkeyed(request), request.lower_headers(), request.body)
    assert data == DATA and reader.checksums == {"crc32": crc32(DATA)}


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(DATA) + 200), max_size=12),
       bytewise_prefix=st.integers(min_value=0, max_value=120))
def test_any_split_of_the_framing_decodes_the_same(cuts: list[int], bytewise_prefix: int) -> None:
    """ASGI messages may cut the chunk headers, CRLFs and trailer anywhere, even one byte at a time."""
    request = _UNSIGNED_TRAILER
    data, reader = read(unkeyed(request), request.lower_headers(), request.body,
                        cuts=[*cuts, *range(1, bytewise_prefix)])
    assert data == DATA and reader.checksums == {"crc32": crc32(DATA)}

    key, stamp, seed = _SIGNED
    body = signed_chunks(DATA, 4096, key=key, stamp=stamp, seed=seed, trailer=[("x-amz-checksum-crc32", crc32(DATA))])
    data, reader = read(_signed_head(trailer=True), _signed_headers(trailer=True), body,
                        cuts=[*cuts, *range(len(body) - bytewise_prefix, len(body))])
    assert data == DATA and reader.checksums == {"crc32": crc32(DATA)}


_UNSIGNED_TRAILER = boto3_put()


# Signed chunks: AWS's own example, then chunks framed here.

def test_aws_documented_signed_chunk_example() -> None:
    """The example of the S3 API reference (SigV4 streaming): 66560 bytes of 'a' in 64 KiB chunks."""
    authorization = ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                     "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                     "x-amz-decoded-content-length;x-amz-storage-class,"
                     "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
    headers = {"host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z", "authorization": authorization,
               "x-amz-storage-class": "REDUCED_REDUNDANCY",
               "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "66560", "content-length": "66824"}
    signed = read_head("PUT", "/examplebucket/chunkObject.txt", headers, now=calendar.timegm((2013, 5, 24, 0, 0, 0)))
    key = check_signature(signed, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", headers["x-amz-content-sha256"], s3=True)
    body = (b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
            + b"a" * 65536 + b"\r\n"
            + b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
            + b"a" * 1024 + b"\r\n"
            + b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
    assert len(body) == 66824
    head = SignedHead(None, headers["x-amz-content-sha256"], signed.signature, key, signed.credential_scope,
                      signed.stamp)
    data, reader = read(head, headers, body, cuts=range(0, len(body), 8191))
    assert data == b"a" * 66560 and reader.size == 66560
    tampered = body.replace(b"aaaa\r\n400", b"aaab\r\n400")
    error = refused(head, headers, tampered)
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)


def _make_signed() -> tuple[bytes, str, str]:
    request = signed_head("https://s3.test/b/k", {}, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", KEY, SECRET)
    seed, stamp = seed_of(request)
    return derive_key(SECRET, stamp[:8]), stamp, seed


_SIGNED = _make_signed()


def _signed_head(*, trailer: bool = False) -> SignedHead:
    key, stamp, seed = _SIGNED
    claim = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    return SignedHead(None, claim, seed, key, f"{stamp[:8]}/us-east-1/s3/aws4_request", stamp)


def _signed_headers(*, trailer: bool = False, length: int = len(DATA)) -> dict[str, str]:
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(length)}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    return headers


def _signed_body(data: bytes = DATA, trailer: list[tuple[str, str]] | None = None, chunk: int = 4096) -> bytes:
    key, stamp, seed = _SIGNED
    return signed_chunks(data, chunk, key=key, stamp=stamp, seed=seed, trailer=trailer)


def test_signed_chunks() -> None:
    data, reader = read(_signed_head(), _signed_headers(), _signed_body())
    assert data == DATA and reader.md5_hex == hashlib.md5(DATA).hexdigest()


def test_signed_chunks_with_a_signed_trailer() -> None:
    body = _signed_body(trailer=[("x-amz-checksum-crc32", crc32(DATA))])
    data, reader = read(_signed_head(trailer=True), _signed_headers(trailer=True), body)
    assert data == DATA and reader.checksums == {"crc32": crc32(DATA)}


def test_tampered_chunk_data_and_signatures() -> None:
    body = _signed_body()
    for tampered in (body.replace(b"tail", b"tale"), body.replace(b"chunk-signature=", b"chunk-signature=0", 1)[:-1],
                     body[:body.rindex(b"0;chunk-signature=")] + b"0;chunk-signature=" + b"f" * 64 + b"\r\n\r\n"):
        error = refused(_signed_head(), _signed_headers(), tampered)
        assert error.code in ("SignatureDoesNotMatch", "InvalidRequest"), error
    error = refused(_signed_head(), _signed_headers(), body.replace(b"tail", b"tale"))
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)


def test_chunks_signed_with_another_secret() -> None:
    key, stamp, seed = _SIGNED
    body = signed_chunks(DATA, 4096, key=derive_key("other-secret", stamp[:8]), stamp=stamp, seed=seed)
    assert refused(_signed_head(), _signed_headers(), body).code == "SignatureDoesNotMatch"


def test_reordered_chunks_break_the_chain() -> None:
    body = _signed_body(chunk=5120)
    first_end = body.index(b"\r\n", body.index(b"\r\n") + 2) + 2
    second_end = body.index(b"\r\n", body.index(b"\r\n", first_end) + 2) + 2
    swapped = body[first_end:second_end] + body[:first_end] + body[second_end:]
    assert refused(_signed_head(), _signed_headers(), swapped).code == "SignatureDoesNotMatch"


def test_tampered_or_unsigned_trailer() -> None:
    good = _signed_body(trailer=[("x-amz-checksum-crc32", crc32(DATA))])
    forged = good.replace(crc32(DATA).encode(), crc32(b"other").encode())
    error = refused(_signed_head(trailer=True), _signed_headers(trailer=True), forged)
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    stripped = good[:good.index(b"x-amz-trailer-signature:")] + b"\r\n"
    assert refused(_signed_head(trailer=True), _signed_headers(trailer=True), stripped).code == "SignatureDoesNotMatch"


def test_trailer_appended_to_a_body_signed_without_one() -> None:
    body = _signed_body()[:-2] + f"x-amz-checksum-crc32:{crc32(DATA)}\r\n\r\n".encode()
    assert refused(_signed_head(), _signed_headers(), body).code == "InvalidRequest"


def test_unsigned_chunk_in_a_signed_body() -> None:
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(DATA), DATA)
    assert refused(_signed_head(), _signed_headers(), body).code == "SignatureDoesNotMatch"


def test_without_keys_signed_chunks_are_decoded_unchecked() -> None:
    body = _signed_body()
    data, _ = read(SignedHead(None, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), _signed_headers(), body)
    assert data == DATA


# Lengths, framing and truncation.

def unsigned_trailer_body(data: bytes, trailer: str = "", chunk: int = 1000) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + chunk]), data[i:i + chunk]) for i in range(0, len(data), chunk))
    return out + b"0\r\n" + trailer.encode() + b"\r\n"


def unsigned_headers(length: int = len(DATA), trailer: str | None = "x-amz-checksum-crc32") -> dict[str, str]:
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(length)}
    if trailer:
        headers["x-amz-trailer"] = trailer
    return headers


UNSIGNED_TRAILER = SignedHead(None, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
GOOD = unsigned_trailer_body(DATA, f"x-amz-checksum-crc32:{crc32(DATA)}\r\n")


@pytest.mark.parametrize("declared", [len(DATA) - 1, len(DATA) + 1])
def test_wrong_decoded_length(declared: int) -> None:
    error = refused(UNSIGNED_TRAILER, unsigned_headers(declared), GOOD)
    assert error.code in ("IncompleteBody", "InvalidRequest") and error.status == 400


def test_missing_decoded_length() -> None:
    headers = unsigned_headers()
    del headers["x-amz-decoded-content-length"]
    error = refused(UNSIGNED_TRAILER, headers, GOOD)
    assert (error.code, error.status) == ("MissingContentLength", 411)


@pytest.mark.parametrize("cut", [1, 500, len(GOOD) // 2, len(GOOD) - 3, len(GOOD) - 1])
def test_truncated_body(cut: int) -> None:
    error = refused(UNSIGNED_TRAILER, unsigned_headers(), GOOD[:cut])
    assert (error.code, error.status) == ("IncompleteBody", 400)


def test_client_going_away_mid_body() -> None:
    error = refused(UNSIGNED_TRAILER, unsigned_headers(), GOOD[:2000], disconnect=True)
    assert error.code == "IncompleteBody"
    error = refused(SignedHead(None, "UNSIGNED-PAYLOAD"), {}, DATA, disconnect=True)
    assert error.code == "IncompleteBody"


@pytest.mark.parametrize("framing", [
    b"ffffffffffffffff\r\n",  # 16 EiB announced
    b"1000000000\r\n",  # more than max_bytes
])
def test_huge_chunk_size_is_refused_before_any_data(framing: bytes) -> None:
    error = refused(UNSIGNED_TRAILER, unsigned_headers(10), framing + b"a" * 100, max_bytes=1 << 20)
    assert error.code in ("EntityTooLarge", "InvalidRequest")


def test_endless_chunk_header_or_trailer_is_bounded() -> None:
    for body in (b"a" + b"0" * 100_000, b"1;" + b"x" * 100_000,
                 b"0\r\nx-amz-checksum-crc32:" + b"A" * 100_000):
        error = refused(UNSIGNED_TRAILER, unsigned_headers(), body, cuts=range(0, len(body), 1000))
        assert error.code == "InvalidRequest" and ("4 KiB" in error.message or "16 KiB" in error.message)


@pytest.mark.parametrize("body", [
    b"zz\r\n",  # not hex
    b"4\r\nabcdX\r\n",  # data longer than its size
    b"4\nabcd\r\n0\r\n\r\n",  # bare LF
    GOOD + b"extra",  # bytes after the final chunk
    unsigned_trailer_body(DATA, "no-colon\r\n"),
])
def test_malformed_framing(body: bytes) -> None:
    error = refused(UNSIGNED_TRAILER, unsigned_headers(), body)
    assert error.status == 400 and error.code in ("InvalidRequest", "IncompleteBody")


def test_too_large_plain_body_and_declared_length() -> None:
    assert refused(SignedHead(None, "UNSIGNED-PAYLOAD"), {}, DATA, max_bytes=100).code == "EntityTooLarge"
    assert refused(UNSIGNED_TRAILER, unsigned_headers(), GOOD, max_bytes=100).code == "EntityTooLarge"


# Content-MD5 and checksums.

def test_content_md5() -> None:
    good = {"content-md5": b64(hashlib.md5(DATA).digest())}
    assert read(SignedHead(None), good, DATA)[0] == DATA
    error = refused(SignedHead(None), {"content-md5": b64(hashlib.md5(b"x").digest())}, DATA)
    assert (error.code, error.status) == ("BadDigest", 400)
    error = refused(SignedHead(None), {"content-md5": "not base64!"}, DATA)
    assert (error.code, error.status) == ("InvalidDigest", 400)


def test_bad_crc32_in_a_header_or_trailer() -> None:
    error = refused(SignedHead(None), {"x-amz-checksum-crc32": crc32(b"x")}, DATA)
    assert (error.code, error.message) == ("BadDigest", "The CRC32 you specified did not match the calculated "
                                                        "checksum.")
    wrong = unsigned_trailer_body(DATA, f"x-amz-checksum-crc32:{crc32(b'x')}\r\n")
    assert refused(UNSIGNED_TRAILER, unsigned_headers(), wrong).code == "BadDigest"


@pytest.mark.parametrize(("algorithm", "digest"), [
    # The CRC catalogue's check values, of b"123456789".
    ("crc32c", bytes.fromhex("e3069283")),
    ("crc64nvme", bytes.fromhex("ae8b14860a799888")),
    ("crc32", bytes.fromhex("cbf43926")),
    ("sha1", hashlib.sha1(b"123456789").digest()),
    ("sha256", hashlib.sha256(b"123456789").digest()),
])
def test_every_algorithm(algorithm: str, digest: bytes) -> None:
    name = f"x-amz-checksum-{algorithm}"
    headers = {name: b64(digest), "x-amz-sdk-checksum-algorithm": algorithm.upper()}
    data, reader = read(SignedHead(None), headers, b"123456789", cuts=[4])
    assert data == b"123456789" and reader.checksums == {algorithm: b64(digest)}
    body = unsigned_trailer_body(b"123456789", f"{name}:{b64(digest)}\r\n", chunk=2)
    _, reader = read(UNSIGNED_TRAILER, unsigned_headers(9, name), body)
    assert reader.checksums == {algorithm: b64(digest)}
    error = refused(SignedHead(None), headers, b"123456780")
    assert error.code == "BadDigest" and algorithm.upper() in error.message


def test_pure_python_crcs_are_bounded() -> None:
    """Without awscrt, CRC32C and CRC64NVME cost the event loop about 4 MB/s: past PURE_PYTHON_LIMIT, refused."""
    if checksums._crt is not None:
        pytest.skip("awscrt is installed: CRC32C and CRC64NVME are computed by it, without the bound")
    big = str(checksums.PURE_PYTHON_LIMIT + 1)
    error = refused(SignedHead(None), {"x-amz-checksum-crc32c": "AAAAAA==", "content-length": big}, b"")
    assert error.code == "InvalidRequest" and "CRC32" in error.message and "awscrt" in error.message
    body = b"a" * (checksums.PURE_PYTHON_LIMIT + 1)
    error = refused(SignedHead(None), {"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="}, body, cuts=[1 << 20])
    assert error.code == "InvalidRequest" and "CRC64NVME" in error.message


@pytest.mark.parametrize("headers", [
    {"x-amz-checksum-crc32": "AAAAAAAA"},  # six bytes
    {"x-amz-checksum-crc32": crc32(DATA), "x-amz-checksum-sha1": b64(hashlib.sha1(DATA).digest())},
    {"x-amz-sdk-checksum-algorithm": "CRC32"},
    {"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-checksum-crc32": crc32(DATA)},
    {"x-amz-trailer": "x-amz-checksum-crc32"},  # a trailer on a body that has none
])
def test_inconsistent_checksum_headers(headers: dict[str, str]) -> None:
    error = refused(SignedHead(None, "UNSIGNED-PAYLOAD"), headers, DATA)
    assert (error.code, error.status) == ("InvalidRequest", 400)


def test_trailer_other_than_the_declared_one() -> None:
    body = unsigned_trailer_body(DATA, f"x-amz-checksum-crc32:{crc32(DATA)}\r\n")
    error = refused(UNSIGNED_TRAILER, unsigned_headers(trailer="x-amz-checksum-sha256"), body)
    assert error.code == "InvalidRequest"
    error = refused(UNSIGNED_TRAILER, unsigned_headers(trailer=None), body)
    assert error.code == "InvalidRequest"
    error = refused(UNSIGNED_TRAILER, unsigned_headers(), unsigned_trailer_body(DATA))
    assert error.code == "InvalidRequest"


_FRAGMENTS = st.sampled_from([b"0", b"1", b"a", b"ff", b"10", b";", b"chunk-signature=", b"=", b"\r\n", b"\r", b"\n",
                              b":", b"x-amz-checksum-crc32", b"x-amz-trailer-signature", b"AAAAAA==", b"z" * 50])


@settings(max_examples=300, deadline=None)
@given(body=st.lists(_FRAGMENTS | st.binary(max_size=40), max_size=40).map(b"".join),
       cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=6),
       signed=st.booleans(), disconnect=st.booleans())
def test_any_bytes_decode_or_are_refused_with_an_s3_error(body: bytes, cuts: list[int], signed: bool,
                                                          disconnect: bool) -> None:
    """Hostile framing ends in decoded bytes or an `S3Error` (never another exception, never more bytes out
    than the chunk sizes announced, or than max_bytes)."""
    head = _signed_head(trailer=True) if signed else UNSIGNED_TRAILER
    headers = unsigned_headers(len(body), None)
    try:
        data, reader = read(head, headers, body, cuts, max_bytes=300, disconnect=disconnect)
    except S3Error as error:
        assert error.status in (400, 403, 411)
    else:
        assert not disconnect and len(data) == reader.size <= 300
