"""Who may call the server: SigV4 signatures checked against the access keys (`forklift keys`).

With no key created the server keeps its embedded default, unsigned requests accepted (it says so at
start, and refuses to listen beyond loopback). Once a key exists every request, on every API of the
port, must be signed by a known key; `forklift.api.sigv4.verify` recomputes the signature with
botocore's signer. Keys are read through a short-lived cache, so a request costs no database query;
a key created or deleted while the server runs counts within `REFRESH` seconds. The key's policy travels
with it, compiled once per read, on the `Principal` the request is then authorized as (`api.authz`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from forklift.api.errors import ApiError
from forklift.api.sigv4 import (
    Principal,
    SignatureRejected,
    SignedRequestHead,
    check_signature,
    read_head,
    unknown_key,
    verify,
)
from forklift.credentials.accesskeys import AccessKeys
from forklift.credentials.policy import CompiledPolicy, compile_policy

REFRESH = 2.0  # seconds a key (or the absence of one) is believed without asking the database
CACHED_KEYS = 1024  # ids remembered, known or not: a flood of made-up ids asks the database once each


@dataclasses.dataclass(frozen=True)
class VerifiedHead:
    """A head whose signature checked out, without its body: who signed it (with the key's policy), the
    derived signing key, and the signature as read, for what chains from it (S3's signed chunks)."""

    principal: Principal
    signing_key: bytes = dataclasses.field(repr=False)
    signed: SignedRequestHead


@dataclasses.dataclass(frozen=True)
class _Known:
    secret: str
    name: str | None
    policy: CompiledPolicy | None


class KeyAuthenticator:
    def __init__(self, keys: AccessKeys, clock: Callable[[], float] = time.monotonic):
        self.keys, self.clock = keys, clock
        self._lock = threading.Lock()
        self._keyed: tuple[float, bool] | None = None
        self._secrets: OrderedDict[str, tuple[float, _Known | None]] = OrderedDict()

    def keyed(self) -> bool:
        """Whether any access key exists (then every request must be signed)."""
        now = self.clock()
        with self._lock:
            if self._keyed is not None and now - self._keyed[0] < REFRESH:
                return self._keyed[1]
        keyed = self.keys.any()
        with self._lock:
            self._keyed = (now, keyed)
        return keyed

    def _known(self, key_id: str) -> _Known | None:
        now = self.clock()
        with self._lock:
            cached = self._secrets.get(key_id)
            if cached is not None and now - cached[0] < REFRESH:
                self._secrets.move_to_end(key_id)
                return cached[1]
        found = self.keys.secret_of(key_id)
        value = None
        if found is not None:
            secret, key = found
            value = _Known(secret, key.name, compile_policy(key.policy) if key.policy is not None else None)
        with self._lock:
            self._secrets[key_id] = (now, value)
            self._secrets.move_to_end(key_id)
            while len(self._secrets) > CACHED_KEYS:
                self._secrets.popitem(last=False)
        return value

    def __call__(self, scope: Mapping[str, Any], body: bytes) -> Principal | None:
        """Who signed the request of this ASGI `scope` (None while no key exists), or ApiError."""
        if not self.keyed():
            return None
        found: list[_Known] = []

        def lookup(key_id: str) -> tuple[str, str | None] | None:
            known = self._known(key_id)
            if known is None:
                return None
            found.append(known)  # the same read decides the signature and the policy
            return known.secret, known.name

        try:
            principal = verify(scope["method"], request_target(scope), scope["headers"], body, lookup)
        except SignatureRejected as exc:
            raise ApiError(exc.code, exc.message, exc.status) from None
        return _with_policy(principal, found[0])

    def head(self, scope: Mapping[str, Any], payload_hash: str, *, s3: bool = False,
             max_expires: int | None = None, now: float | None = None) -> VerifiedHead | None:
        """The signer of this ASGI `scope`'s head alone (None while no key exists), taking `payload_hash` as
        the body's, or `SignatureRejected` unmapped, for an API with codes of its own (S3: `api.s3sigv4`)."""
        if not self.keyed():
            return None
        signed = read_head(scope["method"], request_target(scope), scope["headers"], max_expires=max_expires,
                           now=now)
        known = self._known(signed.access_key_id)
        if known is None:
            raise unknown_key()
        key = check_signature(signed, known.secret, payload_hash, s3=s3)
        return VerifiedHead(_with_policy(Principal(signed.access_key_id, known.name), known), key, signed)


def _with_policy(principal: Principal, known: _Known) -> Principal:
    return principal if known.policy is None else Principal(principal.access_key_id, principal.name, known.policy)


def request_target(scope: Mapping[str, Any]) -> str:
    """The path and query as the client sent (and signed) them: still percent-encoded."""
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string") or b""
    return path + (f"?{query.decode('latin-1')}" if query else "")
