"""Who signed an S3 request, and its body decoded and checked as it streams.

S3 requests are checked in two steps, since an object's body may be gigabytes that must never be
buffered: `authenticate_s3` checks the signature of the head (the payload's hash it claims is among
the signed headers), then `PayloadReader.read` yields the body's bytes as they arrive and, once the
last one is read, has checked everything the head promised about them; a consumer keeps what it
wrote only when the iteration ends without an `S3Error`.

(Interface first: the signature and payload checks are filled in behind these names.)
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from forklift.api.s3errors import S3Error
from forklift.api.sigv4 import Principal

__all__ = ["PayloadReader", "SignedHead", "authenticate_s3"]


@dataclass(frozen=True)
class SignedHead:
    """A request head whose signature checked out (or that needed none)."""

    principal: Principal | None  # None: the server has no access key yet, unsigned requests are accepted
    payload: str = ""  # x-amz-content-sha256 as sent: a hex digest, UNSIGNED-PAYLOAD, STREAMING-…, or ""
    # What signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) chain from: the head's own signature,
    # the derived signing key, the credential scope and the time signed at.
    seed_signature: str | None = None
    signing_key: bytes | None = field(default=None, repr=False)
    credential_scope: str | None = None
    stamp: str | None = None


def authenticate_s3(authenticator: Any, scope: Mapping[str, Any]) -> SignedHead:
    """The signer of this S3 request's head (header or presigned query), or `S3Error` with S3's code.

    `authenticator` is the server's `KeyAuthenticator` (None: accept everything, as the tests' bare apps do).
    """
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return SignedHead(None, headers.get("x-amz-content-sha256", ""))


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

    async def read(self, receive: Any) -> AsyncIterator[bytes]:
        """The decoded body from ASGI `receive`, chunk by chunk; raises `S3Error` on any mismatch."""
        md5 = hashlib.md5(usedforsecurity=False)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise S3Error("IncompleteBody", "You did not provide the number of bytes specified by the "
                                                "Content-Length HTTP header.")
            chunk = message.get("body", b"")
            if chunk:
                self.size += len(chunk)
                if self.size > self.max_bytes:
                    raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                                  MaxSizeAllowed=str(self.max_bytes))
                md5.update(chunk)
                yield chunk
            if not message.get("more_body", False):
                break
        self.md5_hex = md5.hexdigest()
