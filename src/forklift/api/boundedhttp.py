"""uvicorn's httptools protocol with the bounds of `forklift serve`'s edge, and the head budget it
shares with `forklift.api.dataplane`.

A request's head (request line and headers) is bounded: past `MAX_HEAD` bytes or
`MAX_HEADER_FIELDS` fields the answer is 431 and the connection is closed. httptools has no limit
of its own and buffers a header until its line ends, so bytes of a head still unfinished are counted
as they arrive, not only once the parser hands a header over. Its time is bounded too, and its
body's (`forklift.api.edge`).
"""

from __future__ import annotations

import http
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from forklift.api.edge import (
    Admission,
    EdgeLimits,
    PhaseTimer,
    body_seconds,
    body_timeout_answer,
    head_timeout_answer,
)

log = logging.getLogger(__name__)
MAX_HEAD = 64 * 1024  # request line and headers; an SDK's head is under 4 KiB
MAX_HEADER_FIELDS = 100  # as Apache's LimitRequestFields; an SDK sends about 12
HEAD_TOO_LARGE = f"The request line and headers exceed {MAX_HEAD} bytes or {MAX_HEADER_FIELDS} fields.".encode()


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools turns it into HttpParserCallbackError."""


class HeadBudget:
    """What the head of the request being parsed has used of `MAX_HEAD` and `MAX_HEADER_FIELDS`."""

    __slots__ = ("begun", "fields", "received", "open", "over", "size")

    def __init__(self) -> None:
        self.open = False  # a request has begun and its headers are not complete
        self.over = False
        self.size = self.received = self.fields = self.begun = 0

    def begin(self) -> None:
        self.open, self.size, self.received, self.fields = True, 0, 0, 0
        self.begun += 1

    def mark(self) -> int | None:
        """Before a feed: which request's head is open, if one is."""
        return self.begun if self.open else None

    def spend(self, size: int, fields: int = 0) -> None:
        """Count a piece of the head the parser handed over; raise once past the bounds."""
        self.size += size
        self.fields += fields
        if self.size > MAX_HEAD or self.fields > MAX_HEADER_FIELDS:
            self.over = True
            raise HeadTooLarge

    def fed(self, mark: int | None, size: int) -> bool:
        """After a feed of `size` bytes: count them if the head open before (`mark`) is still open, as
        then all of them were head; True once past MAX_HEAD."""
        if mark is not None and self.open and self.begun == mark:
            self.received += size
            self.over = self.over or self.received > MAX_HEAD
        return self.over


def plain_refusal(status: int, message: bytes, default_headers: Any = ()) -> bytes:
    lines = [STATUS_LINES.get(status) or status_line(status)]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    return b"".join(lines) + (b"content-type: text/plain\r\nconnection: close\r\ncontent-length: "
                              + str(len(message)).encode() + b"\r\n\r\n" + message)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (the one `http="auto"` picks), with the head bounded in size and
    the head and body in time (`forklift.api.edge`). `protocol_for` sets `limits`; `DataPlaneProtocol`
    hands over a connection with its `admission` and the deadline of the head it began reading."""

    limits: EdgeLimits = EdgeLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_budget = HeadBudget()
        self.admission: Admission | None = None
        self.head_deadline: float | None = None  # loop time; set by a hand-over mid-head, else at its start
        self.body_deadline = 0.0
        self.received_at = 0.0  # loop time of the read being handled
        self.in_body = False
        self.request_timer = PhaseTimer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.request_timer.stop()
        if self.admission is not None:
            self.admission.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.received_at = self.loop.time()
        mark = self.head_budget.mark()
        super().data_received(data)
        if self.head_budget.fed(mark, len(data)) and not self.transport.is_closing():
            self.send_400_response("")
        # A request still arriving when the read ends gets a timer on the part awaited; one that came
        # whole costs none. Bytes with no request begun (blank lines) are timed as a head.
        cycle = self.cycle
        idle = cycle is None or cycle.response_complete
        phase = "head" if self.head_budget.open or (idle and not self.in_body) else "body" if self.in_body else None
        if phase != self.request_timer.phase and not self.transport.is_closing():
            if phase == "head":
                if not self.head_budget.open:
                    self.head_started()
                self.request_timer.arm(self.loop, phase, self.head_deadline or 0.0, self._head_timed_out)
            elif phase == "body":
                self.request_timer.arm(self.loop, phase, self.body_deadline, self._body_timed_out)
            else:
                self.request_timer.stop()

    def head_started(self) -> None:
        """The deadline of a head beginning in this read; a head handed over mid-way keeps its own."""
        if self.head_deadline is None:
            self.head_deadline = self.received_at + self.limits.head_timeout

    def send_400_response(self, msg: str) -> None:
        if not self.head_budget.over:
            super().send_400_response(msg)
            return
        self.transport.write(plain_refusal(431, HEAD_TOO_LARGE, self.server_state.default_headers))
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_budget.begin()
        self.head_started()

    def on_url(self, url: bytes) -> None:
        self.head_budget.spend(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_budget.spend(len(name) + len(value) + 4, fields=1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_budget.open = False
        self.head_deadline = None
        self.body_deadline = self.received_at + body_seconds(self.limits.body_timeout, self.headers)
        self.in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_body = False
        self.request_timer.stop()
        super().on_message_complete()

    def _head_timed_out(self) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # the answer before is still being written
            cycle.keep_alive = False
            return
        self._time_out(head_timeout_answer(self.limits.head_timeout))

    def _body_timed_out(self) -> None:
        # The ASGI app waits in `receive()`: the close makes that an `http.disconnect`, so the request
        # is dropped, never handled with the part of the body that came.
        started = self.cycle is not None and self.cycle.response_started
        self._time_out(None if started else body_timeout_answer(self.limits.body_timeout))

    def _time_out(self, answer: bytes | None) -> None:
        if self.transport.is_closing():
            return
        log.debug("closing a connection from %s: the request did not arrive in time", self.client)
        if answer is not None:
            self.transport.write(answer)
        self.transport.close()


def status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


STATUS_LINES = {status: status_line(status) for status in (200, 400, 404, 413, 424, 429, 431, 500, 503)}
