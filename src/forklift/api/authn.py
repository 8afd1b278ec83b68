"""Who may call the server: SigV4 signatures checked against the access keys (`forklift keys`).

With no key created the server keeps its embedded default, unsigned requests accepted (it says so at
start, and refuses to listen beyond loopback). Once a key exists every request, on every API of the
port, must be signed by a known key; `forklift.api.sigv4.verify` recomputes the signature with
botocore's signer. Keys are read through a short-lived cache, so a request costs no database query;
a key created or deleted while the server runs counts within `REFRESH` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from forklift.api.errors import ApiError
from forklift.api.sigv4 import Principal, SignatureRejected, verify
from forklift.credentials.accesskeys import AccessKeys

REFRESH = 2.0  # seconds a key (or the absence of one) is believed without asking the database
CACHED_KEYS = 1024  # ids remembered, known or not: a flood of made-up ids asks the database once each


class KeyAuthenticator:
    def __init__(self, keys: AccessKeys, clock: Callable[[], float] = time.monotonic):
        self.keys, self.clock = keys, clock
        self._lock = threading.Lock()
        self._keyed: tuple[float, bool] | None = None
        self._secrets: OrderedDict[str, tuple[float, tuple[str, str | None] | None]] = OrderedDict()

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

    def _lookup(self, key_id: str) -> tuple[str, str | None] | None:
        now = self.clock()
        with self._lock:
            cached = self._secrets.get(key_id)
            if cached is not None and now - cached[0] < REFRESH:
                self._secrets.move_to_end(key_id)
                return cached[1]
        found = self.keys.secret_of(key_id)
        value = (found[0], found[1].name) if found is not None else None
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
        try:
            return verify(scope["method"], request_target(scope), scope["headers"], body, self._lookup)
        except SignatureRejected as exc:
            raise ApiError(exc.code, exc.message, exc.status) from None


def request_target(scope: Mapping[str, Any]) -> str:
    """The path and query as the client sent (and signed) them: still percent-encoded."""
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string") or b""
    return path + (f"?{query.decode('latin-1')}" if query else "")
