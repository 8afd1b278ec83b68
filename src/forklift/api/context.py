"""Who is calling, from where: the per-request context handed to every handler."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from forklift.api.protocol import arn
from forklift.api.sigv4 import Principal

# Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/sagemaker/aws4_request, ...
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
_REGION = re.compile(r"[a-z0-9-]{1,32}")
ANONYMOUS = "anonymous"
_ACCESS_KEY = re.compile(r"[A-Za-z0-9+/=._-]{1,128}")


@dataclass(frozen=True)
class SigV4Scope:
    access_key_id: str
    date: str
    region: str
    service: str


def parse_sigv4(authorization: str | None, query_credential: str | None = None) -> SigV4Scope | None:
    """The credential scope of a SigV4 `Authorization` header (or presigned `X-Amz-Credential`).

    The signature itself is not verified here. Returns None when absent or malformed.
    """
    text = authorization or (f"Credential={query_credential}" if query_credential else "")
    match = _CREDENTIAL.search(text)
    if not match:
        return None
    key, day, region, service = match.groups()
    if not _ACCESS_KEY.fullmatch(key) or not _REGION.fullmatch(region):
        return None
    return SigV4Scope(key, day, region, service)


@dataclass(frozen=True)
class RequestContext:
    """Per request: id (also the `x-amzn-RequestId` header), region/account used for ARNs, caller."""

    request_id: str
    region: str
    account: str
    access_key_id: str | None = None
    operation: str = ""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    principal: Principal | None = None  # who signed the request, verified; None while no key exists

    @property
    def caller(self) -> str:
        """Who made the request, as recorded: the signing key's ARN, or "anonymous" while no key exists
        (the embedded default, loopback only)."""
        return self.principal.arn(self.account) if self.principal else ANONYMOUS

    def arn(self, resource_type: str, name: str) -> str:
        """`arn:aws:sagemaker:<region>:<account>:<type>/<name lower-cased>`."""
        return arn(resource_type, name, self.region, self.account)


def new_request_id() -> str:
    """A random (version 4) UUID, as AWS request ids are; from `random`, as they need not be
    unguessable, which takes a third of `uuid.uuid4()`'s time on InvokeEndpoint's hot path."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def build_context(request_id: str, headers: Mapping[str, str], query: Mapping[str, str],
                  default_region: str, account: str, operation: str = "",
                  principal: Principal | None = None) -> RequestContext:
    scope = parse_sigv4(headers.get("authorization"), query.get("X-Amz-Credential"))
    return RequestContext(
        request_id=request_id,
        region=scope.region if scope else default_region,
        account=account,
        access_key_id=scope.access_key_id if scope else None,
        operation=operation,
        headers={k: v for k, v in headers.items() if k.lower() != "authorization"},
        principal=principal,
    )
