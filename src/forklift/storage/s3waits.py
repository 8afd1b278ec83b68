"""How long the S3 backend waits on an endpoint, and when it gives up: the registry's waits, for S3.

An S3 endpoint breaks the way a registry does (a stall, a cut connection, a burst of 503 SlowDown),
so it gets the same settings and the same policy (forklift.registry.retry): connect within
`registry_connect_timeout_seconds`, no gap longer than `registry_read_timeout_seconds` (botocore has
one read timeout, for the first byte and between bytes), and a failure waited out with backoff and
jitter for up to `registry_retry_seconds`, counted from the first failure (an object that gets
further than before starts it again). botocore's and s3transfer's own retries are off: nested, they
multiplied a stall into many minutes (5 GETs, each tried 5 times, each waiting 60 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from forklift.config import Settings
from forklift.registry.retry import RETRY_STATUSES, Attempts, RetryPolicy

T = TypeVar("T")
Progress = Callable[[int], None]  # s3transfer's callback: bytes moved since the last call
# One GET or PUT per object, tried once: the policy here retries the whole object.
TRANSFER = TransferConfig(num_download_attempts=1)
_CUT = (ConnectionClosedError, ResponseStreamingError, IncompleteReadError, ConnectionResetError)


@dataclass(frozen=True)
class S3Waits:
    connect: float = 10.0
    read: float = 30.0
    budget: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Waits:
        return cls(settings.registry_connect_timeout_seconds, settings.registry_read_timeout_seconds,
                   settings.registry_retry_seconds)

    def client_config(self) -> Config:
        return Config(s3={"addressing_style": "path"}, connect_timeout=self.connect, read_timeout=self.read,
                      retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=32)

    def call(self, fn: Callable[[Progress], T], sleep: Callable[[float], None] = time.sleep) -> T:
        """fn(progress) until it succeeds or its failure is not worth another try within the budget;
        the last failure is raised with `given_up` set to what the waiting adds to its message."""
        attempts = RetryPolicy(budget=self.budget).attempts()
        lock = threading.Lock()  # a multipart transfer reports from several threads
        furthest = 0
        moved = 0

        def progress(nbytes: int) -> None:
            # Each attempt starts the object over: only getting further than before is progress,
            # or an endpoint that stalls after the same first bytes would be retried for ever.
            nonlocal furthest, moved
            with lock:
                moved += nbytes
                if moved > furthest:
                    furthest = moved
                    attempts.progressed()

        while True:
            moved = 0
            try:
                return fn(progress)
            except Exception as exc:  # noqa: BLE001 - sorted below; what is not transient goes up unchanged
                if not _worth_retrying(exc, attempts):
                    exc.given_up = attempts.given_up()  # type: ignore[attr-defined]
                    raise
            sleep(attempts.delay())

    def describe(self, exc: BaseException, endpoint: str) -> str | None:
        """One sentence for a failure to get an answer (None: not one of those), naming the setting
        that bounded the wait, so whoever reads it knows what to change."""
        cause = _cause(exc)
        given_up = getattr(exc, "given_up", "")
        if isinstance(cause, ReadTimeoutError):
            return (f"the S3 endpoint {endpoint} stalled: no data for {self.read:g} s "
                    f"(registry_read_timeout_seconds){given_up}")
        if isinstance(cause, ConnectTimeoutError):
            return (f"the S3 endpoint {endpoint} did not accept a connection within {self.connect:g} s "
                    f"(registry_connect_timeout_seconds){given_up}")
        if isinstance(cause, EndpointConnectionError):
            return f"cannot reach the S3 endpoint {endpoint}{given_up}"
        if isinstance(cause, _CUT):
            return f"the S3 endpoint {endpoint} cut the transfer short ({cause}){given_up}"
        if isinstance(cause, ClientError) and _status(cause) in RETRY_STATUSES:
            error = cause.response.get("Error", {})
            return (f"the S3 endpoint {endpoint} answered {_status(cause)} {error.get('Code') or ''}".rstrip()
                    + f"{given_up}")
        return None


def _cause(exc: BaseException) -> BaseException:
    """The botocore error behind boto3's transfer wrappers."""
    if isinstance(exc, RetriesExceededError) and exc.last_exception is not None:
        return exc.last_exception
    if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None:
        return exc.__context__  # raised while handling the ClientError, not from it
    return exc


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _worth_retrying(exc: BaseException, attempts: Attempts) -> bool:
    cause = _cause(exc)
    if isinstance(cause, ClientError):
        return attempts.retries_status(_status(cause))
    transient = isinstance(cause, (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, *_CUT))
    return transient and attempts.retries_transient()
