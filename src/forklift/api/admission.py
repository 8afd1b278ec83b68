"""How many control-plane requests `forklift serve` works on at once, and what the rest are told.

Every SageMaker and CloudWatch Logs call past its body runs on the event loop and, for a sync handler,
in the worker thread pool: under more load than the process can answer, requests used to queue for a
thread without bound, and a client's call took as long as the whole queue ahead of it, then timed out.
Now at most `max_requests_in_flight` run at once (config.toml's `[server]`); the next ones wait up to
`request_queue_seconds` for a place, in order, and past that are answered 400 `ThrottlingException`
("Rate exceeded"), which botocore retries by itself with a backoff. A caller under load sees a longer
call or a retried one, never a timeout, and the server's memory and latency stay bounded.

One caller (an access key; a source address for unsigned calls) holds at most
`max_requests_in_flight_per_caller` of the places (default a quarter of them),
so a key whose calls wait long in their handlers (a provider function, a stalled registry) or that
opens hundreds of connections slows itself, not everyone else.

InvokeEndpoint (`forklift.api.dataplane`) is not counted here: it never waits for a thread, and the
connection limits of `forklift.api.edge` bound it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from forklift.api.errors import ApiError

log = logging.getLogger(__name__)

DEFAULT_IN_FLIGHT = 64  # above the worker thread pool (40), so it is never idle while requests wait
# Long enough that a thousand clients calling back to back on two cores are answered within botocore's
# retries (bench/load.py), far below its 60 s read timeout.
DEFAULT_QUEUE_SECONDS = 5.0
CALLER_SHARE = 4  # one caller holds at most 1/CALLER_SHARE of the places


class RequestGate:
    """The control-plane requests of one server in progress, and those waiting for a place."""

    def __init__(self, limit: int = DEFAULT_IN_FLIGHT, queue_seconds: float = DEFAULT_QUEUE_SECONDS,
                 per_caller: int | None = None) -> None:
        self.limit = limit
        self.per_caller = min(limit, per_caller or max(1, limit // CALLER_SHARE))
        self.queue_seconds = queue_seconds
        self._places = asyncio.Semaphore(limit)
        self._callers: dict[str, _CallerPlaces] = {}  # only callers with a request held or waiting
        self.throttled = 0  # requests answered ThrottlingException since the server started

    @contextlib.asynccontextmanager
    async def admitted(self, caller: str = "") -> AsyncIterator[None]:
        """Hold a place for the block; raises ApiError ThrottlingException when none frees in time."""
        own = self._callers.get(caller)
        if own is None:
            own = self._callers[caller] = _CallerPlaces(self.per_caller)
        own.users += 1
        try:
            taken: list[asyncio.Semaphore] = []
            try:
                async with asyncio.timeout(self.queue_seconds):
                    for semaphore in (own.places, self._places):
                        await semaphore.acquire()
                        taken.append(semaphore)
            except TimeoutError:
                for semaphore in taken:
                    semaphore.release()
                self.throttled += 1
                log.debug("throttled a request: %d in progress for %g s", self.limit, self.queue_seconds)
                raise throttled(self.limit) from None
            try:
                yield
            finally:
                for semaphore in taken:
                    semaphore.release()
        finally:
            own.users -= 1
            if own.users == 0:
                del self._callers[caller]


class _CallerPlaces:
    def __init__(self, limit: int) -> None:
        self.places = asyncio.Semaphore(limit)
        self.users = 0  # requests of this caller held or waiting


def throttled(limit: int) -> ApiError:
    return ApiError("ThrottlingException",
                    f"Rate exceeded: this server is already answering {limit} requests "
                    "(server.max_requests_in_flight in config.toml); try again shortly.", 400)
