"""Which requests on forklift serve's port are S3's, and which bucket and key they name.

A request is S3's when its signature's credential scope names the `s3` service (the Authorization
header, or a presigned URL's `X-Amz-Credential`; a SigV2 signature is always S3's), so a bucket named
`endpoints` or `ping` works; else when its Host is virtual-host style, `<bucket>.<base>` with `base`
one of the `virtual_hosts` (`localhost`, config.toml's `[server] s3_virtual_host_suffixes`, the host
name forklift serve binds); else, unsigned, when it is none of the other APIs' routes (`POST /`: JSON with
`X-Amz-Target` or a query form, `GET /ping`, `/_forklift/…`, `/service/…`, `POST /endpoints/<name>/invocations`
without a query string).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

_SCOPE_SERVICE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]*/([^/,\s]+)/aws4_request")
_QUERY_SERVICE = re.compile(r"(?:^|&)X-Amz-Credential=[^&/]+(?:/|%2F)\d{8}(?:/|%2F)[^&/%]*(?:/|%2F)([^&/%]+)"
                            r"(?:/|%2F)aws4_request", re.IGNORECASE)
_INVOKE = re.compile(r"/endpoints/[^/]+/invocations")


@dataclass(frozen=True)
class S3Target:
    bucket: str  # "" for the service (ListBuckets)
    key: str  # "" for the bucket itself
    virtual: bool  # the bucket came from the Host header


def _header(scope: Mapping[str, Any], name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def signed_service(scope: Mapping[str, Any]) -> str | None:
    """The service the request is signed for ("s3" for SigV2), or None when unsigned."""
    authorization = _header(scope, b"authorization")
    if authorization:
        if authorization.startswith("AWS "):
            return "s3"
        match = _SCOPE_SERVICE.search(authorization)
        return match.group(1) if match else None
    query = (scope.get("query_string") or b"").decode("latin-1")
    match = _QUERY_SERVICE.search(query)
    if match:
        return match.group(1)
    if "AWSAccessKeyId=" in query and "Signature=" in query:
        return "s3"
    return None


def host_name(scope: Mapping[str, Any]) -> str:
    host = _header(scope, b"host").strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def virtual_bucket(host: str, bases: Iterable[str]) -> str | None:
    """The bucket a virtual-host style Host names, or None (IP literals are never virtual hosts)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    for base in bases:
        base = base.lower().strip(".")
        if base and host.endswith("." + base):
            bucket = host[: -len(base) - 1]
            if bucket:
                return bucket
    return None


def is_s3(scope: Mapping[str, Any], bases: Iterable[str]) -> bool:
    service = signed_service(scope)
    if service is not None:
        return service == "s3"
    if virtual_bucket(host_name(scope), bases) is not None:
        return True
    path, method = scope["path"], scope["method"]
    if path == "/" and method == "POST":  # JSON with X-Amz-Target, or a query form; S3 has no POST on the service
        return False
    if path == "/ping" and method == "GET":
        return False
    if path.startswith(("/_forklift/", "/service/")):
        return False
    return not (method == "POST" and not scope.get("query_string") and _INVOKE.fullmatch(path))


def target(scope: Mapping[str, Any], bases: Iterable[str]) -> S3Target:
    """The bucket and key an S3 request names (the key percent-decoded from the raw path)."""
    raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    path = unquote(raw, encoding="utf-8", errors="surrogateescape")
    bucket = virtual_bucket(host_name(scope), bases)
    if bucket is not None:
        return S3Target(bucket, path[1:], True)
    bucket, _, key = path[1:].partition("/")
    return S3Target(bucket, key, False)
