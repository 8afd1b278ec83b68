"""SigV4 request verification: who signed a request, or AWS's error code for why it is refused.

`verify` takes a request as it came off the wire (the method, the path and query exactly as sent, the
headers, the body) and a `lookup` from access key id to (secret, name). It recomputes the signature with
botocore's own SigV4 signer (the canonical request and string to sign are botocore's, so whatever boto3
signs verifies) and answers the `Principal` that signed, or raises `SignatureRejected` with the code,
message and status AWS answers for that fault:

- `MissingAuthenticationTokenException`: no Authorization header and no `X-Amz-Algorithm` presign query;
- `IncompleteSignatureException`: an Authorization header (or presign query) that is not a whole SigV4
  one, `host` not among the signed headers, no `X-Amz-Date` nor `Date` header;
- `UnrecognizedClientException`: an access key `lookup` does not know;
- `InvalidSignatureException`: an unreadable date, a date more than `max_skew` seconds from now (or a
  presigned URL past its `X-Amz-Expires`), an `x-amz-content-sha256` that is not the body's, a signed
  header the request lacks, a signature that does not match.

The signing key is cached per (secret, date, region, service): one HMAC over the string to sign per call.

`verify` is two steps any API may take apart: `read_head` reads and checks the signature's form, date and
expiry from the head, `check_signature` recomputes it with a secret and a payload hash (with `s3=True`, over
S3's canonical request, whose path botocore neither normalises nor re-encodes). S3 takes them apart, since
its body is checked as it streams, after the head (`api.s3sigv4`); each `SignatureRejected` names its
`fault`, so S3 can answer its own codes.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.auth import STREAMING_UNSIGNED_PAYLOAD_TRAILER, UNSIGNED_PAYLOAD, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

if TYPE_CHECKING:
    from forklift.credentials.policy import CompiledPolicy

__all__ = ["Principal", "SignatureRejected", "SignedRequestHead", "check_signature", "read_head", "unknown_key",
           "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_UNHASHED_PAYLOADS = frozenset({UNSIGNED_PAYLOAD, STREAMING_UNSIGNED_PAYLOAD_TRAILER})
_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
             "Secret Access Key and signing method. Consult the service documentation for details.")

HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]
Lookup = Callable[[str], "tuple[str, str | None] | None"]


@dataclass(frozen=True)
class Principal:
    """Who signed a request: the access key id, the name the key store holds for it, and the key's
    policy (None: full access), which the authenticator attaches for `forklift.api.authz`."""

    access_key_id: str
    name: str | None
    policy: CompiledPolicy | None = field(default=None, compare=False, repr=False)

    def arn(self, account: str) -> str:
        """The IAM-style ARN forklift records and names this caller by (audit log, ownership, AccessDenied)."""
        return f"arn:aws:iam::{account}:user/{self.name or self.access_key_id}"


class SignatureRejected(Exception):
    """A request refused for its signature: `code` is AWS's error code for the answer (`__type`), `fault`
    which of `FAULTS` it is, for an API whose codes tell them apart (S3: `api.s3sigv4`)."""

    def __init__(self, code: str, message: str, status: int = 400, *, fault: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fault = fault

    def __repr__(self) -> str:
        return f"SignatureRejected({self.code!r}, {self.message!r}, status={self.status})"


# missing: no signature at all; malformed: not a whole SigV4 one; date: no readable date; skew: signed too far
# from now; expired: a presigned URL past its X-Amz-Expires; unknown-key; payload: x-amz-content-sha256 is not
# the body's; mismatch: the signature is not the one the secret makes.
FAULTS = ("missing", "malformed", "date", "skew", "expired", "unknown-key", "payload", "mismatch")


def unknown_key() -> SignatureRejected:
    """The refusal of an access key id the key store does not hold."""
    return SignatureRejected("UnrecognizedClientException", "The security token included in the request is invalid.",
                             fault="unknown-key")


def _incomplete(message: str, fault: str = "malformed") -> SignatureRejected:
    return SignatureRejected("IncompleteSignatureException", message, fault=fault)


def _invalid(message: str, fault: str) -> SignatureRejected:
    return SignatureRejected("InvalidSignatureException", message, fault=fault)


@lru_cache(maxsize=1024)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key, HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class _Recompute(SigV4Auth):
    """botocore's signer over exactly the headers the client named as signed, with a cached signing key.

    botocore's own `headers_to_sign` would drop the ones it never signs (user-agent, …) and add a host from
    the URL; a verifier must canonicalise what the client listed, no more, no less.
    """

    def __init__(self, access_key: str, secret: str, service: str, region: str,
                 headers: HTTPHeaders, payload_hash: str) -> None:
        super().__init__(Credentials(access_key, secret), service, region)
        self._headers = headers
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: Any) -> HTTPHeaders:
        return self._headers

    def payload(self, request: Any) -> str:
        return self._payload_hash

    def signature(self, string_to_sign: str, request: Any) -> str:
        key = _signing_key(self.credentials.secret_key, request.context["timestamp"][0:8],
                           self._region_name, self._service_name)
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class _S3Recompute(_Recompute, S3SigV4Auth):
    """The same over S3's canonical request, whose path is the one sent, neither normalised nor re-encoded."""


def _header_map(headers: HeaderItems) -> dict[str, list[str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, list[str]] = {}
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        out.setdefault(name.lower(), []).append(value)
    return out


def _parse_timestamp(value: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 basic `YYYYMMDDTHHMMSSZ`, None if it is not one."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z" or not (value[:8] + value[9:15]).isdigit():
        return None
    try:
        return datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]), int(value[11:13]),
                        int(value[13:15]), tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _format(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(_SIGV4_TIMESTAMP)


def _parse_authorization(value: str) -> tuple[str, str, str]:
    """(Credential, SignedHeaders, Signature) of an `AWS4-HMAC-SHA256 Credential=…, …` header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'. Authorization={value}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, val = part.strip().partition("=")
        if eq:
            fields[key] = val.strip()
    missing = [f"Authorization header requires '{name}' parameter."
               for name in ("Credential", "Signature", "SignedHeaders") if not fields.get(name)]
    if missing:
        raise _incomplete(" ".join(missing) + f" Authorization={value}")
    return fields["Credential"], fields["SignedHeaders"], fields["Signature"]


def _parse_presign(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in query.split("&"):
        key, _, val = pair.partition("=")
        if key.startswith("X-Amz-"):
            params.setdefault(key, unquote(val))
    missing = [name for name in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date")
               if not params.get(name)]
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{params.get('X-Amz-Algorithm')}'.")
    if missing:
        raise _incomplete(" ".join(f"AWS query-string parameters must include '{name}'." for name in missing)
                          + " Re-examine the query-string parameters.")
    return params


def _check_skew(stamp: str, signed_at: float, now: float, max_skew: float) -> None:
    minutes = f"{max_skew / 60:g} min."
    if signed_at < now - max_skew:
        raise _invalid(f"Signature expired: {stamp} is now earlier than {_format(now - max_skew)} "
                       f"({_format(now)} - {minutes})", "skew")
    _check_not_ahead(stamp, signed_at, now, max_skew)


def _check_not_ahead(stamp: str, signed_at: float, now: float, max_skew: float) -> None:
    if signed_at > now + max_skew:
        raise _invalid(f"Signature not yet current: {stamp} is still later than {_format(now + max_skew)} "
                       f"({_format(now)} + {max_skew / 60:g} min.)", "skew")


@dataclass(frozen=True)
class SignedRequestHead:
    """What a request's head says about its signature, read and checked for form, date and expiry but not
    yet against a secret: `read_head` makes it, `check_signature` recomputes it."""

    method: str
    path: str  # as sent, still percent-encoded
    query: str  # as sent, less a presigned URL's X-Amz-Signature
    header_map: dict[str, list[str]] = field(repr=False)
    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    stamp: str
    presigned: bool

    @property
    def credential_scope(self) -> str:
        return f"{self.scope_date}/{self.region}/{self.service}/aws4_request"


def read_head(method: str, path_and_query: str, headers: HeaderItems, *, now: float | None = None,
              max_skew: float = 900.0, max_expires: int | None = None) -> SignedRequestHead:
    """The signature a request's head carries (Authorization header or presigned query), or
    `SignatureRejected`. With `max_expires` (S3) a presigned URL must say its `X-Amz-Expires`, at most that,
    and is good for as long, however long ago it was signed; without, it is also held to `max_skew`."""
    if now is None:
        now = time.time()
    header_map = _header_map(headers)
    path, _, query = path_and_query.partition("?")

    authorization = header_map.get("authorization")
    presigned = authorization is None and "X-Amz-Algorithm=" in query
    if authorization is not None:
        credential, signed_headers, signature = _parse_authorization(authorization[0])
    elif presigned:
        params = _parse_presign(query)
        credential, signed_headers, signature = (
            params["X-Amz-Credential"], params["X-Amz-SignedHeaders"], params["X-Amz-Signature"])
        # The client signed the query without its signature.
        query = "&".join(pair for pair in query.split("&") if pair.partition("=")[0] != "X-Amz-Signature")
    else:
        raise SignatureRejected("MissingAuthenticationTokenException", "Request is missing Authentication Token",
                                fault="missing")

    scope = credential.split("/")
    if len(scope) != 5 or not all(scope):
        raise _incomplete(f"Credential should be scoped to a valid region, not '{credential}'. "
                          f"Authorization={authorization[0] if authorization else credential}")
    access_key_id, scope_date, region, service, terminator = scope
    if terminator != "aws4_request":
        raise _incomplete(f"Credential should be scoped with a valid terminator: 'aws4_request', not "
                          f"'{terminator}'.")

    names = tuple(name.strip().lower() for name in signed_headers.split(";"))
    if "host" not in names:
        raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")

    # The time it was signed at: X-Amz-Date, or (as botocore signs when the request has one) the Date header.
    if presigned:
        stamp = params["X-Amz-Date"]
    elif "x-amz-date" in header_map:
        stamp = header_map["x-amz-date"][0].strip()
    elif "date" in header_map:
        try:
            stamp = parsedate_to_datetime(header_map["date"][0]).astimezone(UTC).strftime(_SIGV4_TIMESTAMP)
        except (TypeError, ValueError):
            raise _invalid(f"Date must be in RFC 1123 format. Got '{header_map['date'][0]}'.", "date") from None
    else:
        raise _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                          f"Authorization={authorization[0] if authorization else ''}", "date")
    signed_at = _parse_timestamp(stamp)
    if signed_at is None:
        raise _invalid(f"Date must be in ISO-8601 'basic format'. Got '{stamp}'. "
                       "See http://en.wikipedia.org/wiki/ISO_8601", "date")
    if scope_date != stamp[:8]:
        raise _invalid(f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
                       f"HTTP: '{scope_date}' != '{stamp[:8]}', from '{stamp}'.", "malformed")
    if presigned:
        _check_presign_window(params.get("X-Amz-Expires", ""), stamp, signed_at, now, max_skew, max_expires)
    else:
        _check_skew(stamp, signed_at, now, max_skew)
    return SignedRequestHead(method, path, query, header_map, access_key_id, scope_date, region, service, names,
                             signature, stamp, presigned)


def _check_presign_window(expires: str, stamp: str, signed_at: float, now: float, max_skew: float,
                          max_expires: int | None) -> None:
    if max_expires is None:
        _check_skew(stamp, signed_at, now, max_skew)
    else:
        _check_not_ahead(stamp, signed_at, now, max_skew)
        if not expires:
            raise _incomplete("AWS query-string parameters must include 'X-Amz-Expires'. "
                              "Re-examine the query-string parameters.")
    if expires and not expires.isdigit():
        raise _incomplete(f"X-Amz-Expires must be a number of seconds, not '{expires}'.")
    if expires and max_expires is not None and int(expires) > max_expires:
        raise _incomplete(f"X-Amz-Expires must be less than a week (in seconds) that is; {max_expires}: "
                          f"sign the URL for at most {max_expires} seconds, not {expires}.")
    if expires and signed_at + int(expires) < now:
        raise _invalid(f"Signature expired: {stamp} is now earlier than {_format(now - int(expires))} "
                       f"({_format(now)} - {expires} sec.)", "expired")


def check_signature(head: SignedRequestHead, secret: str, payload_hash: str, *, s3: bool = False) -> bytes:
    """The signing key, once the head's signature is the one `secret` makes over it with `payload_hash` as
    the body's (unless the client signed `x-amz-content-sha256`, whose value botocore then signs instead);
    `SignatureRejected` otherwise. `s3`: S3's canonical request, as botocore's `S3SigV4Auth` makes it."""
    to_sign = HTTPHeaders()
    for header in head.signed_headers:
        values = head.header_map.get(header)
        if values is None:
            raise _invalid(_MISMATCH, "mismatch")
        for value in values:
            to_sign[header] = value
    request = AWSRequest(method=head.method,
                         url=f"http://signed{head.path}" + (f"?{head.query}" if head.query else ""),
                         headers={n: ",".join(head.header_map[n]) for n in head.signed_headers})
    request.context["timestamp"] = head.stamp
    recompute = _S3Recompute if s3 else _Recompute
    auth = recompute(head.access_key_id, secret, head.service, head.region, to_sign, payload_hash)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    if not hmac.compare_digest(auth.signature(string_to_sign, request), head.signature):
        raise _invalid(_MISMATCH, "mismatch")
    return _signing_key(secret, head.scope_date, head.region, head.service)


def verify(method: str, path_and_query: str, headers: HeaderItems, body: bytes, lookup: Lookup, *,
           now: float | None = None, max_skew: float = 900.0) -> Principal:
    """The principal who signed this request with SigV4, or `SignatureRejected` with AWS's answer.

    `path_and_query` is the request target as sent (still percent-encoded: ASGI's `raw_path` and
    `query_string`, not the decoded `path`); `headers` a mapping or (name, value) pairs, str or bytes.
    """
    head = read_head(method, path_and_query, headers, now=now, max_skew=max_skew)
    found = lookup(head.access_key_id)
    if found is None:
        raise unknown_key()
    secret, name = found

    body_hash = hashlib.sha256(body).hexdigest()
    claimed = head.header_map.get("x-amz-content-sha256")
    if claimed is not None:
        value = claimed[0].strip()
        if value not in _UNHASHED_PAYLOADS and value != body_hash:
            raise _invalid("The provided 'x-amz-content-sha256' header does not match what was computed.", "payload")
    check_signature(head, secret, body_hash)
    return Principal(head.access_key_id, name)
