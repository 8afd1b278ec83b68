"""Who signed an S3 request, and its body decoded and checked as it streams.

S3 requests are checked in two steps, since an object's body may be gigabytes that must never be
buffered: `authenticate_s3` checks the signature of the head (the payload's hash it claims is among
the signed headers; `api.s3sigv4`), then `PayloadReader.read` yields the body's bytes as they arrive and,
once the last one is read, has checked everything the head promised about them: the claimed SHA-256,
the aws-chunked framing and its chunk signatures (`api.awschunked`), the decoded length, Content-MD5 and an
`x-amz-checksum-*` header or trailer (`api.checksums`). A consumer keeps what it wrote only when the
iteration ends without an `S3Error`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from forklift.api.awschunked import ChunkedDecoder, ChunkSigner
from forklift.api.checksums import ALGORITHMS, Checksum, decode_base64_digest, digest_size, new_checksum
from forklift.api.s3errors import S3Error, decimal
from forklift.api.s3sigv4 import (
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    SignedHead,
    authenticate_s3,
)

__all__ = ["PayloadReader", "SignedHead", "authenticate_s3"]

_CHECKSUM_PREFIX = "x-amz-checksum-"
_STREAMING = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
_TRAILING = (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)


def _incomplete() -> S3Error:
    return S3Error("IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP "
                                     "header: the body ended early; send it whole.")


class PayloadReader:
    """An S3 request body: decoded (aws-chunked) and checked (hashes, chunk signatures, lengths,
    Content-MD5, x-amz-checksum-*) while it is read; at most `max_bytes` decoded bytes."""

    def __init__(self, head: SignedHead, headers: Mapping[str, str], *, max_bytes: int) -> None:
        self.head = head
        self.headers = headers  # lower-cased names
        self.max_bytes = max_bytes
        self.checksums: dict[str, str] = {}  # verified x-amz-checksum-<algorithm>: base64 value
        self.md5_hex = ""  # of the decoded bytes, once read: a single PUT's ETag
        self.size = 0
        encodings = [e.strip() for e in headers.get("content-encoding", "").split(",") if e.strip()]
        self.chunked = head.payload in _STREAMING or any(e.lower() == "aws-chunked" for e in encodings)
        # The object's own Content-Encoding: what the client sent, less the framing of this one request.
        self.content_encoding: str | None = ",".join(e for e in encodings if e.lower() != "aws-chunked") or None

    async def read(self, receive: Any) -> AsyncIterator[bytes]:
        """The decoded body from ASGI `receive`, chunk by chunk; raises `S3Error` on any mismatch."""
        declared = self._declared_length()
        plain_length = self.headers.get("content-length", "")
        checksum = _ChecksumPlan(self.headers, declared if self.chunked else
                                 decimal(plain_length))
        content_md5 = self.headers.get("content-md5")
        expected_md5 = decode_base64_digest("content-md5", content_md5, 16) if content_md5 is not None else None
        claimed_sha256 = self.head.payload if len(self.head.payload) == 64 else None
        wire_sha256 = hashlib.sha256() if claimed_sha256 is not None else None
        if checksum.trailer is not None and not self.chunked:
            raise S3Error("InvalidRequest", f"x-amz-trailer names {checksum.trailer}, but the body is not aws-chunked: "
                                            "send the checksum in a header instead.")
        decoder = self._decoder(checksum) if self.chunked else None
        md5 = hashlib.md5(usedforsecurity=False)

        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _incomplete()
            data = message.get("body", b"")
            if data:
                if wire_sha256 is not None:
                    wire_sha256.update(data)
                pieces = [data] if decoder is None else decoder.feed(data)
                if decoder is not None and declared is not None and decoder.decoded > declared:
                    raise S3Error("InvalidRequest", f"The aws-chunked body's chunks add up to more than its "
                                                    f"x-amz-decoded-content-length of {declared} bytes: send that "
                                                    "header with the body's decoded length.")
                for piece in pieces:
                    self.size += len(piece)
                    if self.size > self.max_bytes:
                        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                                      MaxSizeAllowed=str(self.max_bytes))
                    md5.update(piece)
                    checksum.update(piece)
                    yield piece
            if not message.get("more_body", False):
                break

        if decoder is not None:
            decoder.finish()
            if self.size != declared:
                raise _incomplete()
            checksum.take_trailers(decoder.trailers)
        if wire_sha256 is not None and wire_sha256.hexdigest() != claimed_sha256:
            raise S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match "
                                                       "what was computed.",
                          ClientComputedContentSHA256=str(claimed_sha256),
                          S3ComputedContentSHA256=wire_sha256.hexdigest())
        if expected_md5 is not None and md5.digest() != expected_md5:
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.",
                          ExpectedDigest=base64.b64encode(expected_md5).decode(), CalculatedDigest=md5.hexdigest())
        self.checksums = checksum.verified()
        self.md5_hex = md5.hexdigest()

    def _declared_length(self) -> int | None:
        """x-amz-decoded-content-length, which an aws-chunked body must send (None for a plain one)."""
        if not self.chunked:
            return None
        value = self.headers.get("x-amz-decoded-content-length")
        if value is None:
            raise S3Error("MissingContentLength", "An aws-chunked body needs the x-amz-decoded-content-length "
                                                  "header: send the body's decoded length in it.", 411)
        declared = decimal(value.strip())
        if declared is None:
            raise S3Error("InvalidArgument", "x-amz-decoded-content-length must be the body's decoded length in "
                                             "bytes.", ArgumentName="x-amz-decoded-content-length",
                          ArgumentValue=value[:64])
        if declared > self.max_bytes:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                          MaxSizeAllowed=str(self.max_bytes))
        return declared

    def _decoder(self, checksum: _ChecksumPlan) -> ChunkedDecoder:
        head = self.head
        signer = None
        if head.payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER) and head.signing_key is not None:
            assert head.stamp and head.credential_scope and head.seed_signature  # set with signing_key
            signer = ChunkSigner(head.signing_key, head.stamp, head.credential_scope, head.seed_signature)
        if checksum.trailer is not None and head.payload not in _TRAILING:
            raise S3Error("InvalidRequest", f"x-amz-trailer names {checksum.trailer}, but x-amz-content-sha256 "
                                            f"{head.payload or '(none)'} has no trailer: send "
                                            f"{STREAMING_UNSIGNED_TRAILER} or {STREAMING_SIGNED_TRAILER}.")
        return ChunkedDecoder(signer, max_bytes=self.max_bytes, signed_trailer=head.payload == STREAMING_SIGNED_TRAILER)


class _ChecksumPlan:
    """The one x-amz-checksum-* a request promises (in a header, or a trailer named by x-amz-trailer), run
    over the decoded bytes and compared once they are all read."""

    def __init__(self, headers: Mapping[str, str], size_hint: int | None) -> None:
        self.trailer: str | None = None
        self._algorithm: str | None = None
        self._expected: bytes | None = None
        self._running: Checksum | None = None
        # Other x-amz-checksum-* headers (-type, -algorithm, -mode) belong to other operations.
        named = [name for name in headers
                 if name.startswith(_CHECKSUM_PREFIX) and name[len(_CHECKSUM_PREFIX):] in ALGORITHMS]
        trailer_names = [n.strip().lower() for n in headers.get("x-amz-trailer", "").split(",") if n.strip()]
        if len(named) + len(trailer_names) > 1:
            raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are "
                                            "not allowed.")
        for name in named + trailer_names:
            if not name.startswith(_CHECKSUM_PREFIX) or name[len(_CHECKSUM_PREFIX):] not in ALGORITHMS:
                raise S3Error("InvalidRequest", f"{name} is not a checksum this server verifies: send one of "
                                                f"{', '.join(_CHECKSUM_PREFIX + a for a in ALGORITHMS)}.")
            self._algorithm = name[len(_CHECKSUM_PREFIX):]
        if trailer_names:
            self.trailer = trailer_names[0]
        elif named:
            self._expected = decode_base64_digest(named[0], headers[named[0]], digest_size(self._algorithm or ""))
        sdk_algorithm = headers.get("x-amz-sdk-checksum-algorithm", "").strip().lower()
        if sdk_algorithm:
            if self._algorithm is None:
                raise S3Error("InvalidRequest", "x-amz-sdk-checksum-algorithm specified, but no corresponding "
                                                "x-amz-checksum-* or x-amz-trailer headers were found.")
            if sdk_algorithm != self._algorithm:
                raise S3Error("InvalidRequest", f"Value for x-amz-sdk-checksum-algorithm header is invalid: it says "
                                                f"{sdk_algorithm.upper()}, the checksum sent is "
                                                f"{self._algorithm.upper()}.")
        if self._algorithm is not None:
            self._running = new_checksum(self._algorithm, size_hint)

    def update(self, data: bytes) -> None:
        if self._running is not None:
            self._running.update(data)

    def take_trailers(self, trailers: Mapping[str, str]) -> None:
        """The expected value from the decoded trailer: the one x-amz-trailer named, and no other."""
        sent = {name for name in trailers if name != "x-amz-trailer-signature"}
        if self.trailer is None:
            if sent:
                raise S3Error("InvalidRequest", f"The body's trailer sends {', '.join(sorted(sent))}, which "
                                                "x-amz-trailer did not declare: name it in x-amz-trailer.")
            return
        if self.trailer not in trailers or sent != {self.trailer}:
            raise S3Error("InvalidRequest", f"x-amz-trailer declares {self.trailer}, but the body's trailer sends "
                                            f"{', '.join(sorted(sent)) or 'nothing'}: send exactly the declared "
                                            "trailer.")
        self._expected = decode_base64_digest(self.trailer, trailers[self.trailer],
                                              digest_size(self._algorithm or ""))

    def verified(self) -> dict[str, str]:
        """{algorithm: base64 value} once the body's checksum is the one promised, else `BadDigest`."""
        if self._running is None or self._algorithm is None or self._expected is None:
            return {}
        if self._running.digest() != self._expected:
            raise S3Error("BadDigest", f"The {self._algorithm.upper()} you specified did not match the calculated "
                                       "checksum.")
        return {self._algorithm: base64.b64encode(self._expected).decode()}
