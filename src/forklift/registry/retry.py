"""When and how long to wait before retrying a registry request: one policy for every request.

The policy is a time budget (`registry_retry_seconds`), not a count: an outage, a burst of 5xx or
429 answers, or a stalled transfer is waited out with exponential backoff and full jitter until the
budget is spent, counted from the first failure of that request (a download that makes progress
starts it again). A server's `Retry-After` is honoured but never past what is left of the budget.

The async client (`client`) and the blob downloader (`download`, in worker threads) each take an
`Attempts` from the policy for one request and ask it whether a failure is worth another try.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from forklift.registry.errors import is_retryable_transport_error

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_BUDGET = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retry for up to `budget` seconds; `max_retries` (None: no limit) caps the count as well,
    for callers that want an answer quickly rather than an outage waited out."""

    budget: float = DEFAULT_BUDGET
    max_retries: int | None = None
    statuses: frozenset[int] = RETRY_STATUSES
    base: float = 0.5  # first backoff is up to this long, doubling each attempt
    cap: float = 8.0  # longest backoff
    clock: Callable[[], float] = time.monotonic

    def attempts(self) -> Attempts:
        return Attempts(self)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: attempt 0 waits up to `base`, doubling each time."""
        return random.uniform(0, min(self.cap, self.base * (2 ** min(attempt, 32))))


class Attempts:
    """The retries of one request: how many so far and how much of the budget is left."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.count = 0  # retries so far
        self._since: float | None = None  # the first failure not followed by progress

    def progressed(self) -> None:
        """The request got somewhere (bytes arrived): a later failure has the whole budget again."""
        self.count, self._since = 0, None

    def left(self) -> float:
        if self._since is None:
            return self.policy.budget
        return max(0.0, self.policy.budget - (self.policy.clock() - self._since))

    def _allowed(self) -> bool:
        if self._since is None:
            self._since = self.policy.clock()
        within_count = self.policy.max_retries is None or self.count < self.policy.max_retries
        return within_count and self.left() > 0

    def retries_status(self, status: int) -> bool:
        """Whether an answer with `status` is retried (it starts the budget's clock if it is the first)."""
        return status in self.policy.statuses and self._allowed()

    def retries_error(self, exc: BaseException) -> bool:
        """Whether a failure to get an answer (a dropped or refused connection, a timeout) is retried.

        TLS verification and DNS failures are not: another attempt would fail the same way.
        """
        return is_retryable_transport_error(exc) and self._allowed()

    def retries_transient(self) -> bool:
        """Whether a failure the caller has judged transient (another client's timeout or cut
        connection: the S3 backend's botocore errors) is retried."""
        return self._allowed()

    def delay(self, response: httpx.Response | None = None) -> float:
        """Seconds to wait before the next attempt (and counts it): the server's Retry-After, else
        backoff; never past what is left of the budget. A Retry-After shorter than the backoff (0,
        negative, a date gone by) waits the backoff: taken at its word it would retry in a tight loop."""
        after = retry_after(response) if response is not None else None
        backoff = self.policy.backoff(self.count)
        wait = backoff if after is None else max(after, backoff)
        self.count += 1
        return min(wait, self.left())

    def given_up(self) -> str:
        """What the final error adds: how long the failure was waited out ('' when it was not)."""
        if self.count == 0:
            return ""
        if self.left() <= 0:
            return f"; retried for {self.policy.budget:g} s (registry_retry_seconds) without success"
        return f"; retried {self.count} time{'s' if self.count > 1 else ''} without success"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), at least 0."""
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
    return max(0.0, seconds)


DEFAULT_POLICY = RetryPolicy()
