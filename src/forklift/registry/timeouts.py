"""How long forklift waits on a registry at each step of a request, from config.toml.

Three waits, each named by its config key in the error it ends with: opening a connection
(`registry_connect_timeout_seconds`), the request sent to the head of the answer
(`registry_first_byte_timeout_seconds`), and between two reads of the body
(`registry_read_timeout_seconds`). An answer's head and a body read into memory each have a total
deadline from those (`head_deadline`, `body_deadline`), and a blob download one from its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

from forklift.config import Settings

Phase = Literal["connect", "first_byte", "read"]
KEYS: dict[Phase, str] = {"connect": "registry_connect_timeout_seconds",
                          "first_byte": "registry_first_byte_timeout_seconds",
                          "read": "registry_read_timeout_seconds"}
# A blob must come at least this fast, averaged over its whole download. Far below any working
# link (a 1 GiB layer gets 4.5 hours), so a slow but healthy pull is never failed by it; it exists
# because a drip of a byte every few seconds never trips the between-bytes timeout.
MIN_BLOB_RATE = 64 * 1024  # bytes per second


class WaitedTooLong(TimeoutError):
    """One of the three waits ran out; `phase` says which (a TimeoutError, so it is retried)."""

    def __init__(self, phase: Phase, seconds: float):
        super().__init__(f"no {'connection' if phase == 'connect' else 'data'} for {seconds:g} s ({KEYS[phase]})")
        self.phase, self.seconds = phase, seconds


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 30.0
    read: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Timeouts:
        return cls(settings.registry_connect_timeout_seconds, settings.registry_first_byte_timeout_seconds,
                   settings.registry_read_timeout_seconds)

    def seconds(self, phase: Phase) -> float:
        return {"connect": self.connect, "first_byte": self.first_byte, "read": self.read}[phase]

    def client_default(self) -> httpx.Timeout:
        """For requests forklift does not build itself (token requests inside the auth flow).

        No pool timeout: waiting for a free connection is waiting on forklift's own transfers, each
        bounded by these same timeouts.
        """
        return httpx.Timeout(connect=self.connect, read=self.first_byte, write=self.read, pool=None)

    def for_head(self) -> dict[str, dict[str, float | None]]:
        """A request's timeout extension, set for the wait on the answer's head; `for_body` turns
        the same dict to the between-bytes timeout once the head is in (httpcore reads it again
        when the body is first read)."""
        return {"timeout": {"connect": self.connect, "read": self.first_byte, "write": self.read, "pool": None}}

    def for_body(self, response: httpx.Response) -> None:
        timeout = response.request.extensions.get("timeout")
        if isinstance(timeout, dict):
            timeout["read"] = self.read

    def explain(self, exc: BaseException, waiting: Phase) -> BaseException:
        """`exc` as a WaitedTooLong when it is httpx's timeout, naming which wait ran out (`waiting`
        is the wait a read timeout stands for at this point of the request)."""
        if isinstance(exc, httpx.ConnectTimeout):
            phase: Phase = "connect"
        elif isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
            phase = "read" if isinstance(exc, httpx.WriteTimeout) else waiting
        else:
            return exc
        waited = WaitedTooLong(phase, self.seconds(phase))
        waited.__cause__ = exc
        return waited

    def head_deadline(self, sending: int = 0) -> float:
        """The most the head of an answer may take, from sending the request (the auth flow's token
        request included): one round of every wait, plus the `sending` bytes of an upload's body at
        MIN_BLOB_RATE. A head dripped a byte at a time trips no wait alone."""
        return self.connect + self.first_byte + self.read + sending / MIN_BLOB_RATE

    def body_deadline(self, size: int) -> float:
        """The most a body read into memory may take once the head is in: one read wait, plus its
        size (the announced length, else the most that is read) at MIN_BLOB_RATE."""
        return self.read + size / MIN_BLOB_RATE

    def blob_deadline(self, size: int, retry_seconds: float) -> float:
        """The most one blob's download may take, retries included: one full round of every wait
        and the retry budget (so a small blob is never cut short by it), plus its size at
        MIN_BLOB_RATE."""
        return self.connect + self.first_byte + self.read + retry_seconds + size / MIN_BLOB_RATE
