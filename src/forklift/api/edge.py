"""What one client may take of `forklift serve`'s HTTP edge: connections, and time to send a request.

A connection is a file descriptor, and a server that runs out of them fails every call, its own
database and containers included. So connections are counted when they are accepted: past
`max_connections_per_client` from one source address, or `max_connections` in all (by default what
RLIMIT_NOFILE leaves after room for the server's own files), a new connection is answered 503
`ThrottlingException` and closed at once, and one client's idle sockets cannot starve the others.

Time is bounded per request: its head must be complete within `head_timeout` of its first byte, and
its body within `body_timeout` of the end of its head, plus a second per `MIN_BODY_RATE` bytes its
Content-Length declares (an S3 upload of gigabytes takes minutes, a stalled one still ends); past
either the answer is 408
`RequestTimeout` (if no answer had begun) and the connection is closed. A request whose body never
arrived in full is never handed to a handler. Between requests, uvicorn's `timeout_keep_alive`
closes an idle connection. The protocols of `forklift.api.dataplane` apply all of it.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Callable
from dataclasses import dataclass, field

from forklift.api.admission import DEFAULT_IN_FLIGHT, DEFAULT_QUEUE_SECONDS
from forklift.api.context import new_request_id

MIN_BODY_RATE = 64 * 1024  # bytes per second a declared body may arrive at, beyond body_timeout
MIN_HEADROOM = 256  # descriptors kept for the database, image layers, containers' pipes, logs


def default_max_connections() -> int:
    """RLIMIT_NOFILE less a quarter of it (at least MIN_HEADROOM) for everything else the server opens."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, soft - max(MIN_HEADROOM, soft // 4))


@dataclass(frozen=True)
class EdgeLimits:
    """The bounds a server applies; config.toml's `[server]` table sets them (see `from_config`)."""

    head_timeout: float = 10.0  # seconds from a request's first byte to the end of its headers
    body_timeout: float = 60.0  # seconds from the end of the headers to the end of the body
    keep_alive_timeout: float = 5.0  # seconds an idle connection stays open between requests
    max_connections: int = field(default_factory=default_max_connections)
    max_connections_per_client: int = 256
    max_requests_in_flight: int = DEFAULT_IN_FLIGHT  # control-plane requests at once (forklift.api.admission)
    request_queue_seconds: float = DEFAULT_QUEUE_SECONDS  # the longest one waits for a place, then is throttled
    max_requests_in_flight_per_caller: int | None = None  # of those, one caller's (None: a quarter)

    @classmethod
    def from_config(cls, table: dict) -> EdgeLimits:
        """From config.toml's `[server]` table, already checked against `forklift.config.SCHEMA`."""
        defaults = cls()
        return cls(
            head_timeout=float(table.get("request_head_timeout_seconds", defaults.head_timeout)),
            body_timeout=float(table.get("request_body_timeout_seconds", defaults.body_timeout)),
            keep_alive_timeout=float(table.get("keep_alive_timeout_seconds", defaults.keep_alive_timeout)),
            max_connections=int(table.get("max_connections", defaults.max_connections)),
            max_connections_per_client=int(table.get("max_connections_per_client",
                                                     defaults.max_connections_per_client)),
            max_requests_in_flight=int(table.get("max_requests_in_flight", defaults.max_requests_in_flight)),
            request_queue_seconds=float(table.get("request_queue_seconds", defaults.request_queue_seconds)),
            max_requests_in_flight_per_caller=(int(table["max_requests_in_flight_per_caller"])
                                               if "max_requests_in_flight_per_caller" in table else None),
        )


class Admission:
    """One accepted connection's place in the counts; released once, by whichever protocol has it last."""

    __slots__ = ("client", "gate")

    def __init__(self, gate: ConnectionGate, client: str) -> None:
        self.gate: ConnectionGate | None = gate
        self.client = client

    def release(self) -> None:
        if self.gate is not None:
            self.gate.release(self.client)
            self.gate = None


class ConnectionGate:
    """The open connections of one server, in all and per source address."""

    def __init__(self, limits: EdgeLimits) -> None:
        self.limits = limits
        self.total = 0
        self.per_client: dict[str, int] = {}

    def admit(self, client: str) -> Admission | bytes:
        """The new connection's admission, or the 503 to answer before closing it."""
        held = self.per_client.get(client, 0)
        if held >= self.limits.max_connections_per_client:
            return refusal(503, "ThrottlingException",
                           f"{client} has {held} connections open to this server, the most one client may hold "
                           "(server.max_connections_per_client in config.toml): reuse or close idle ones.")
        if self.total >= self.limits.max_connections:
            return refusal(503, "ThrottlingException",
                           f"This server has {self.total} connections open, the most it takes "
                           "(server.max_connections in config.toml): try again later.")
        self.per_client[client] = held + 1
        self.total += 1
        return Admission(self, client)

    def release(self, client: str) -> None:
        self.total -= 1
        held = self.per_client.pop(client, 1) - 1
        if held:
            self.per_client[client] = held


class PhaseTimer:
    """The one timer of a request still arriving when a read ends: on its head's deadline, then its
    body's. A request that arrives whole in one read (nearly all) never arms it."""

    __slots__ = ("_handle", "phase")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self.phase: str | None = None  # "head" or "body": the part awaited; None while disarmed

    def arm(self, loop: asyncio.AbstractEventLoop, phase: str, when: float, expired: Callable[[], None]) -> None:
        """Time `phase` until `when` (loop time), then call `expired`; a no-op while that phase is timed."""
        if phase == self.phase:
            return
        self.stop()
        self._handle = loop.call_at(when, self._fire, expired)
        self.phase = phase

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.phase = None

    def _fire(self, expired: Callable[[], None]) -> None:
        self._handle = self.phase = None
        expired()


def client_address(transport: object) -> str:
    """The source address of a connection ("" for a Unix socket or when the peer is gone)."""
    peer = transport.get_extra_info("peername")  # type: ignore[attr-defined]
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def refusal(status: int, code: str, message: str) -> bytes:
    """A complete AWS-style JSON error answer that closes the connection."""
    body = json.dumps({"__type": code, "message": message}).encode()
    reason = {408: "Request Timeout", 503: "Service Unavailable"}.get(status, "")
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\n"
            f"x-amzn-RequestId: {new_request_id()}\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def body_seconds(base: float, headers: list[tuple[bytes, bytes]]) -> float:
    """The time a body may take: `base`, plus what its declared length needs at `MIN_BODY_RATE`."""
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return base + int(value) / MIN_BODY_RATE
    return base


def head_timeout_answer(seconds: float) -> bytes:
    return refusal(408, "RequestTimeout", f"The request's headers did not arrive within {seconds:g} seconds "
                   "(server.request_head_timeout_seconds); the connection is closed.")


def body_timeout_answer(seconds: float) -> bytes:
    return refusal(408, "RequestTimeout", f"The request's body did not arrive within {seconds:g} seconds of its "
                   f"headers (server.request_body_timeout_seconds, plus a second per {MIN_BODY_RATE >> 10} KiB its "
                   "Content-Length declares); the connection is closed.")
