"""When and how long to wait before retrying a registry request: one policy for every request.

The async client (`client`) and the blob downloader (`download`, in worker threads) both ask a
`RetryPolicy` whether a failed attempt is worth another and how long to wait first.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from forklift.registry.errors import is_retryable_transport_error

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on a server's say-so


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` retries after the first attempt (attempts are numbered from 0)."""

    max_retries: int = 5
    statuses: frozenset[int] = RETRY_STATUSES
    base: float = 0.25  # first backoff is up to this long, doubling each attempt
    cap: float = 8.0  # longest backoff
    max_retry_after: float = MAX_RETRY_AFTER

    def can_retry(self, attempt: int) -> bool:
        return attempt < self.max_retries

    def retries_status(self, status: int, attempt: int) -> bool:
        """Whether an answer with `status` on attempt `attempt` is retried."""
        return status in self.statuses and self.can_retry(attempt)

    def retries_error(self, exc: BaseException, attempt: int) -> bool:
        """Whether a failure to get an answer (a dropped or refused connection, a timeout) is retried.

        TLS verification and DNS failures are not: another attempt would fail the same way.
        """
        return self.can_retry(attempt) and is_retryable_transport_error(exc)

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before the next attempt: the server's Retry-After (bounded), else backoff."""
        after = self.retry_after(response) if response is not None else None
        return self.backoff(attempt) if after is None else after

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: attempt 0 waits up to `base`, doubling each time."""
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))

    def retry_after(self, response: httpx.Response) -> float | None:
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
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        if math.isnan(seconds):
            return None
        return max(0.0, min(seconds, self.max_retry_after))


DEFAULT_POLICY = RetryPolicy()
