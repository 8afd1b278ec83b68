"""Bearer tokens cached per (realm, service, scope set) until shortly before they expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

DEFAULT_EXPIRES_IN = 60  # seconds, per the token spec when the server omits expires_in
EXPIRY_SKEW = 10  # renew this long before the server's expiry to absorb clock and network delays


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # time.time() seconds
    refresh_token: str | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"Token(expires_at={self.expires_at:.0f})"


def token_from_response(body: dict[str, object], *, now: float | None = None) -> Token:
    """Build a Token from a token endpoint's JSON (`token` and/or `access_token`, `expires_in`, `issued_at`)."""
    value = body.get("token") or body.get("access_token")
    if not isinstance(value, str) or not value:
        raise ValueError("token response has neither 'token' nor 'access_token'")
    now = time.time() if now is None else now
    given = body.get("expires_in")
    try:
        expires_in = int(given) if isinstance(given, (int, float, str)) and given else DEFAULT_EXPIRES_IN
    except ValueError:
        expires_in = DEFAULT_EXPIRES_IN
    issued = _parse_issued_at(body.get("issued_at")) or now
    # A server clock far ahead of ours must not make a fresh token look expired, nor the reverse.
    issued = min(issued, now)
    lifetime = max(expires_in - EXPIRY_SKEW, min(expires_in, 1))
    refresh = body.get("refresh_token")
    return Token(value=value, expires_at=issued + lifetime, refresh_token=refresh if isinstance(refresh, str) else None)


def _parse_issued_at(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


CacheKey = tuple[str, str, frozenset[str]]


class TokenCache:
    """Thread-safe; one token per scope set (never a merged scope that grows without bound)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[CacheKey, Token] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(realm: str, service: str | None, scopes: Iterable[str]) -> CacheKey:
        return (realm, service or "", frozenset(scopes))

    def get(self, key: CacheKey) -> Token | None:
        with self._lock:
            token = self._tokens.get(key)
            if token and token.expires_at > self._clock():
                return token
            self._tokens.pop(key, None)
            return None

    def put(self, key: CacheKey, token: Token) -> None:
        with self._lock:
            self._tokens[key] = token
