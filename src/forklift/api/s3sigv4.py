"""Who signed an S3 request's head, with S3's error codes: the head alone, never the body.

An S3 body may be gigabytes, so its signature covers the hash the head claims for it
(`x-amz-content-sha256`: a hex digest, `UNSIGNED-PAYLOAD`, or one of the `STREAMING-…` framings; a
presigned URL's is `UNSIGNED-PAYLOAD`), and the body is checked against that claim as it streams
(`api.s3payload`). The canonical request is the one botocore's `S3SigV4Auth` makes (the path as sent,
neither normalised nor re-encoded), recomputed by `api.sigv4` as for every other API; the key and its policy
come from `api.authn.KeyAuthenticator.head`, through its cache. Like `api.sigv4.verify`, any region and
service in the credential scope is accepted: the scope only has to be the one signed with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from forklift.api.s3errors import S3Error
from forklift.api.sigv4 import Principal, SignatureRejected

__all__ = ["MAX_PRESIGN_EXPIRES", "STREAMING_SIGNED", "STREAMING_SIGNED_TRAILER", "STREAMING_UNSIGNED_TRAILER",
           "UNSIGNED", "SignedHead", "authenticate_s3"]

MAX_PRESIGN_EXPIRES = 604800  # a week: the longest S3 honours a presigned URL for
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_STREAMING_ECDSA = ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER")
_CLAIMS = (UNSIGNED, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_SIGV2_QUERY = re.compile(r"(?:^|&)AWSAccessKeyId=")
_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your key and "
             "signing method.")


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


def authenticate_s3(authenticator: Any, scope: Mapping[str, Any], *, now: float | None = None) -> SignedHead:
    """The signer of this S3 request's head (header or presigned query), or `S3Error` with S3's code.

    `authenticator` is the server's `KeyAuthenticator` (None: accept everything, as the tests' bare apps do);
    `now` the time to judge the request's date by (the clock's, unless a test says otherwise).
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        headers.setdefault(raw_name.decode("latin-1").lower(), raw_value.decode("latin-1"))
    authorization = headers.get("authorization", "")
    query = (scope.get("query_string") or b"").decode("latin-1")
    presigned = not authorization and "X-Amz-Algorithm=" in query
    claim = headers.get("x-amz-content-sha256", "").strip()
    if not claim and presigned:
        claim = UNSIGNED
    _check_claim(claim)
    if authenticator is None or not authenticator.keyed():
        return SignedHead(None, claim)
    if authorization.startswith("AWS ") or (not authorization and not presigned and _SIGV2_QUERY.search(query)):
        # boto3 presigns S3 URLs with SigV2 unless its Config says otherwise.
        raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported: sign the "
                                        "request with Signature Version 4 (AWS4-HMAC-SHA256; for boto3's "
                                        "presigned URLs, Config(signature_version='s3v4')).")
    if authorization and not claim:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256: sign "
                                        "the body's SHA-256 (or UNSIGNED-PAYLOAD) in that header.")
    try:
        verified = authenticator.head(scope, claim, s3=True, max_expires=MAX_PRESIGN_EXPIRES, now=now)
    except SignatureRejected as exc:
        raise _s3_error(exc, presigned, headers) from None
    if verified is None:
        return SignedHead(None, claim)
    signed = verified.signed
    return SignedHead(verified.principal, claim, signed.signature, verified.signing_key, signed.credential_scope,
                      signed.stamp)


def _check_claim(claim: str) -> None:
    if not claim:
        return
    if claim in _STREAMING_ECDSA:
        raise S3Error("NotImplemented", f"x-amz-content-sha256 {claim} (SigV4a) is not supported by this server: "
                                        "sign with AWS4-HMAC-SHA256.", 501)
    if claim not in _CLAIMS and not _HEX_SHA256.fullmatch(claim):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-"
                                         "TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], or the body's "
                                         "SHA-256 in lower-case hex.",
                      ArgumentName="x-amz-content-sha256", ArgumentValue=claim)


def _s3_error(exc: SignatureRejected, presigned: bool, headers: Mapping[str, str]) -> S3Error:
    """S3's answer for a signature fault `api.sigv4` names (`SignatureRejected.fault`)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if exc.fault == "missing":
        return S3Error("AccessDenied", "Access Denied: sign the request with SigV4 using a key from "
                                       "`forklift keys create`.", 403)
    if exc.fault == "unknown-key":
        return S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                       403)
    if exc.fault == "mismatch":
        return S3Error("SignatureDoesNotMatch", _MISMATCH, 403)
    if exc.fault == "skew":
        return S3Error("RequestTimeTooSkewed", f"The difference between the request time and the current time is "
                                               f"too large: {exc.message}", 403,
                       RequestTime=headers.get("x-amz-date", ""), ServerTime=now,
                       MaxAllowedSkewMilliseconds="900000")
    if exc.fault == "expired":
        return S3Error("AccessDenied", "Request has expired: presign the URL again.", 403, ServerTime=now)
    if exc.fault == "date":
        return S3Error("AccessDenied", f"AWS authentication requires a valid Date or x-amz-date header: "
                                       f"{exc.message}", 403)
    if presigned:
        return S3Error("AuthorizationQueryParametersError", exc.message)
    return S3Error("AuthorizationHeaderMalformed", f"The authorization header is malformed: {exc.message}")
