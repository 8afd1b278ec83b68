"""How many control-plane requests `forklift serve` works on at once, and what the rest are told.

Every SageMaker and CloudWatch Logs call past its body runs on the event loop and, for a sync handler,
in the worker thread pool: under more load than the process can answer, requests used to queue for a
thread without bound, and a client's call took as long as the whole queue ahead of it, then timed out.
Now at most `max_requests_in_flight` run at once (config.toml's `[server]`); the next ones wait up to
`request_queue_seconds` for a place, in order, and past that are answered 400 `ThrottlingException`
("Rate exceeded"), which botocore retries by itself with a backoff. A caller under load sees a longer
call or a retried one, never a timeout, and the server's memory and latency stay bounded.

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


class RequestGate:
    """The control-plane requests of one server in progress, and those waiting for a place."""

    def __init__(self, limit: int = DEFAULT_IN_FLIGHT, queue_seconds: float = DEFAULT_QUEUE_SECONDS) -> None:
        self.limit = limit
        self.queue_seconds = queue_seconds
        self._places = asyncio.Semaphore(limit)
        self.throttled = 0  # requests answered ThrottlingException since the server started

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Hold a place for the block; raises ApiError ThrottlingException when none frees in time."""
        try:
            async with asyncio.timeout(self.queue_seconds):
                await self._places.acquire()
        except TimeoutError:
            self.throttled += 1
            log.debug("throttled a request: %d in progress for %g s", self.limit, self.queue_seconds)
            raise throttled(self.limit) from None
        try:
            yield
        finally:
            self._places.release()


def throttled(limit: int) -> ApiError:
    return ApiError("ThrottlingException",
                    f"Rate exceeded: this server is already answering {limit} requests "
                    "(server.max_requests_in_flight in config.toml); try again shortly.", 400)
