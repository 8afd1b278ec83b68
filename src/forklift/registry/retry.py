"""When and how long to wait before retrying a registry request."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

import httpx

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on a server's say-so


def backoff(attempt: int, base: float = 0.25, cap: float = 8.0) -> float:
    """Exponential backoff with full jitter: attempt 0 waits up to `base`, doubling each time."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), capped."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def is_retryable_transport_error(exc: httpx.TransportError) -> bool:
    """Connection drops and timeouts are worth retrying; TLS verification and DNS failures are not."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return False
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return False
    return True
