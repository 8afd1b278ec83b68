"""Amazon ECR: a registry `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` takes username `AWS`
and a password from `ecr:GetAuthorizationToken` (base64 of `AWS:<password>`, valid 12 hours).

Tokens are cached per (account, region) and fetched again `refresh_margin` before they expire, so a
long-running server never sends a stale one. boto3 finds AWS credentials the usual way (environment,
profile, instance role); a client factory can be injected (tests use botocore's Stubber).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypedDict

from forklift.credentials import ANONYMOUS, Credentials
from forklift.credentials.errors import EcrError
from forklift.reference import ECR_HOST

log = logging.getLogger(__name__)

DEFAULT_REFRESH_MARGIN = 30 * 60.0  # seconds before expiry a token is replaced
FALLBACK_LIFETIME = 12 * 3600.0


@dataclass(frozen=True)
class EcrHost:
    account: str
    region: str
    fips: bool


class AuthorizationData(TypedDict, total=False):
    authorizationToken: str  # base64 of `AWS:<password>`
    expiresAt: datetime
    proxyEndpoint: str


class AuthorizationTokenResponse(TypedDict, total=False):
    authorizationData: list[AuthorizationData]


class EcrClient(Protocol):
    """The part of boto3's ECR client forklift uses."""

    def get_authorization_token(self, *, registryIds: list[str]) -> AuthorizationTokenResponse: ...


def parse_ecr_host(registry: str) -> EcrHost | None:
    m = ECR_HOST.fullmatch(registry.lower())
    return EcrHost(m.group(1), m.group(3), bool(m.group(2))) if m else None


def _boto3_client(region: str) -> EcrClient:
    import boto3  # imported only when an ECR registry is actually asked for

    client: EcrClient = boto3.client("ecr", region_name=region)
    return client


class EcrKeychain:
    def __init__(self, client_factory: Callable[[str], EcrClient] | None = None, *,
                 refresh_margin: float = DEFAULT_REFRESH_MARGIN, clock: Callable[[], float] = time.time):
        self._client_factory = client_factory or _boto3_client
        self._clients: dict[str, EcrClient] = {}
        self._tokens: dict[tuple[str, str], tuple[Credentials, float]] = {}
        self._margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()

    def resolve(self, registry: str, repository: str) -> Credentials:
        host = parse_ecr_host(registry)
        if host is None:
            return ANONYMOUS
        key = (host.account, host.region)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and self._clock() < cached[1] - self._margin:
                return cached[0]
            credentials, expires = self._fetch(host, registry)
            self._tokens[key] = (credentials, expires)
            return credentials

    def _fetch(self, host: EcrHost, registry: str) -> tuple[Credentials, float]:
        client = self._clients.get(host.region)
        if client is None:
            try:
                client = self._clients[host.region] = self._client_factory(host.region)
            except Exception as exc:  # noqa: BLE001 - botocore raises many kinds; all mean "no client"
                raise EcrError(f"cannot create an ECR client for {registry}: {type(exc).__name__}: {exc}") from None
        try:
            answer = client.get_authorization_token(registryIds=[host.account])
        except Exception as exc:  # noqa: BLE001 - NoCredentialsError, ClientError, EndpointConnectionError…
            raise EcrError(
                f"cannot get an ECR authorization token for {registry}: {type(exc).__name__}: {exc}") from None
        data = answer.get("authorizationData") or []
        if not data or not data[0].get("authorizationToken"):
            raise EcrError(f"ECR returned no authorization token for {registry}")
        try:
            username, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise EcrError(
                f"ECR returned an authorization token for {registry} that is not base64 of user:password") from None
        if not password:
            raise EcrError(f"ECR returned an authorization token for {registry} without a password")
        expires_at = data[0].get("expiresAt")
        expires = expires_at.timestamp() if isinstance(expires_at, datetime) else self._clock() + FALLBACK_LIFETIME
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        log.debug("ECR token for %s valid until %s", registry, until)
        return Credentials(username=username or "AWS", password=password), expires
