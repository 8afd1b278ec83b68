"""The HTTP/1.1 protocol of `forklift serve`: InvokeEndpoint answered on the spot, every other
connection handed to uvicorn's own protocol.

InvokeEndpoint is a proxy hop, and on a small machine its cost is mostly system calls and
per-request machinery. Under uvicorn every answer is at least two writes (head, then body) and a
task with an ASGI cycle around it; here the answer is one write, and nothing else runs between
the parser and `runtime.invoke_endpoint` (the same handler the ASGI app uses, so both paths answer
alike). `bench/invoke.py` measures what this buys.

How a connection is split: when a connection is idle, the request line of the next request decides.
`POST /endpoints/<name>/invocations HTTP/1.1`, without a query string, stays here (with one it may be
S3's, a bucket named `endpoints`: the app decides); anything else hands the connection, with
the bytes read so far, to uvicorn's protocol for good (`transport.set_protocol`, as uvicorn itself
does for a WebSocket upgrade). HTTP clients do not pipeline in practice (urllib3 never does); a
pipelined request for anything else behind an InvokeEndpoint is answered 400 and the connection
closed.

    config = uvicorn.Config(app, http=protocol_for(app), ...)

Both protocols bound a request: its head's size (`forklift.api.boundedhttp`: past `MAX_HEAD` bytes
or `MAX_HEADER_FIELDS` fields, 431), the time its head and body take to arrive (408, and a request
whose body does not arrive in full is never answered), and the connections one client holds
(`forklift.api.edge`: past the limit a new connection is answered 503 and closed at once). A client
that goes away before its answer is written is a debug line, not an error.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httptools

from forklift.api.boundedhttp import (
    HEAD_TOO_LARGE,
    STATUS_LINES,
    BoundedHttpToolsProtocol,
    HeadBudget,
    plain_refusal,
    status_line,
)
from forklift.api.edge import (
    Admission,
    ConnectionGate,
    EdgeLimits,
    PhaseTimer,
    body_timeout_answer,
    client_address,
    head_timeout_answer,
)
from forklift.api.sagemaker_runtime import DRAIN_LIMIT, endpoint_in_path, max_body

log = logging.getLogger(__name__)
Handler = Callable[[str, dict, Callable, Callable], Awaitable[None]]  # (endpoint, scope, receive, send)
# InvokeEndpoint never has a query string: `POST /endpoints/x/invocations?uploads` is S3's (a bucket
# named `endpoints`), decided by the app.
_REQUEST_LINE = re.compile(rb"POST (/endpoints/[^/ ?]+/invocations) HTTP/1\.1\r\n")
_LINE_PREFIX = b"POST /endpoints/"
_MAX_LINE = 8192
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_INVALID = b"Invalid HTTP request received."
_NOT_PIPELINABLE = b"Only InvokeEndpoint requests may be pipelined on this connection."
@dataclass
class _Request:
    url: bytearray = field(default_factory=bytearray)
    path: str = ""
    endpoint: str = ""
    query: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    size: int = 0
    keep_alive: bool = True
    close_after: bool = False  # the body was too large to read: answer, then drop the connection
    refused: bytes | None = None  # a 400's message: pipelined behind an InvokeEndpoint and not one, or malformed
    refused_status: int = 400  # 431 for a head past the bounds


class DataPlaneProtocol(asyncio.Protocol):
    """One client connection (see the module docstring). `handler` and `fallback` are set by
    `protocol_for`; uvicorn constructs the class with its own config and server state."""

    handler: Handler
    fallback: type[BoundedHttpToolsProtocol] = BoundedHttpToolsProtocol
    limits: EdgeLimits = EdgeLimits()
    gate: ConnectionGate = ConnectionGate(limits)

    def __init__(self, config: Any, server_state: Any, app_state: dict, _loop: asyncio.AbstractEventLoop | None = None):
        self._uvicorn = {"config": config, "server_state": server_state, "app_state": app_state, "_loop": _loop}
        self.config = config
        self.server_state = server_state
        self.loop = _loop or asyncio.get_event_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.head_budget = HeadBudget()
        self.limit = max_body() + 1  # enough to fail the length check
        self.transport: asyncio.Transport | None = None
        self.scheme = "http"
        self.head = bytearray()  # an idle connection's first bytes, until the request line is whole
        self.request: _Request | None = None  # being parsed
        self.queue: deque[_Request] = deque()  # parsed, waiting to be answered
        self.answering: asyncio.Task | None = None
        self.closing = False
        self.keep_alive_timer: asyncio.TimerHandle | None = None
        self.request_timer = PhaseTimer()
        self.received_at = 0.0  # loop time of the read being handled
        self.head_deadline = self.body_deadline = 0.0
        self.deciding_before = False  # the read being handled continues a request line begun earlier
        self.admission: Admission | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.server_state.connections.add(self)
        admitted = self.gate.admit(client_address(transport))
        if isinstance(admitted, bytes):  # over a connection limit: answered and closed before a byte is read
            self.closing = True
            self.transport.write(admitted)
            self.transport.close()
            return
        self.admission = admitted
        self._arm_keep_alive()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self._disarm_keep_alive()
        self.request_timer.stop()
        if self.admission is not None:
            self.admission.release()
        self.closing = True
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        self._disarm_keep_alive()
        if self.closing and self.admission is None:  # refused at connection_made
            return
        self.received_at = self.loop.time()
        self.deciding_before = bool(self.head)
        if self.request is None and not self.head:  # the first bytes of a head
            self.head_deadline = self.received_at + self.limits.head_timeout
        self._receive(data)
        if self.request is not None or self.head:
            self._watch()

    def _receive(self, data: bytes) -> None:
        if self.request is None and not self.queue and self.answering is None:
            data = bytes(self.head) + data if self.head else data
            decided = self._decide(data)
            if decided is None:
                self.head = bytearray(data)
                return
            self.head.clear()
            if not decided:
                self._hand_over(data)
                return
        budget = self.head_budget
        mark = budget.mark()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._refuse(431 if budget.over else 400, HEAD_TOO_LARGE if budget.over else _INVALID)
            return
        if budget.fed(mark, len(data)):
            self._refuse(431, HEAD_TOO_LARGE)

    def _refuse(self, status: int, message: bytes) -> None:
        """Answer `status` and close: now when idle, else after the answers to the requests before."""
        if not self.queue and self.answering is None:
            self._reject(status, message)
            return
        # Pipelined behind requests still to be answered: the refusal comes after their answers.
        assert self.transport is not None
        self.request = None
        self.transport.pause_reading()
        self._enqueue(_Request(refused=message, refused_status=status))

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close now if idle, else after the answer to the request in progress
        (being answered, or still being received)."""
        self.closing = True
        if self.answering is None and self.request is None and self.transport is not None:
            self.transport.close()

    # -- deciding and handing over -----------------------------------------------------------
    @staticmethod
    def _decide(data: bytes) -> bool | None:
        """True: an InvokeEndpoint request line; False: something else; None: not enough bytes yet."""
        end = data.find(b"\r\n")
        if end < 0:
            if len(data) < _MAX_LINE and _LINE_PREFIX.startswith(data[: len(_LINE_PREFIX)]):
                return None
            return False
        return _REQUEST_LINE.match(data, 0, end + 2) is not None

    def _hand_over(self, data: bytes) -> None:
        assert self.transport is not None
        self.server_state.connections.discard(self)
        self.request_timer.stop()
        protocol = self.fallback(**self._uvicorn)
        protocol.admission, self.admission = self.admission, None
        protocol.head_deadline = self.head_deadline  # the head began here: its time runs on
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.data_received(data)

    def _reject(self, status: int, message: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(plain_refusal(status, message))
            self.transport.close()
        self.closing = True

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if not self.deciding_before:  # else the head began in an earlier read, and its deadline with it
            self.head_deadline = self.received_at + self.limits.head_timeout
        self.deciding_before = False
        self.request = _Request()
        self.head_budget.begin()

    def on_url(self, url: bytes) -> None:
        assert self.request is not None
        self.head_budget.spend(len(url))
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.request is not None
        self.head_budget.spend(len(name) + len(value) + 4, fields=1)
        self.request.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.head_budget.open = False
        self.body_deadline = self.received_at + self.limits.body_timeout
        request = self.request
        assert request is not None and self.transport is not None
        request.keep_alive = self.parser.should_keep_alive()
        parsed = httptools.parse_url(bytes(request.url))
        request.path = parsed.path.decode("latin-1")
        request.query = parsed.query or b""
        request.endpoint = endpoint_in_path(request.path) or ""
        if self.parser.get_method() != b"POST" or not request.endpoint or request.query:
            request.refused = _NOT_PIPELINABLE
            return
        expects = False
        for name, value in request.headers:
            if name == b"content-length" and value.isdigit() and int(value) > DRAIN_LIMIT:
                self._too_large(request)
            elif name == b"expect" and value.lower() == b"100-continue":
                expects = True
        if expects and not request.close_after:  # a body that will not be read is not asked for
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self.request
        if request is None or request.close_after:
            return
        request.size += len(body)
        if len(request.body) < self.limit:
            request.body += body[: self.limit - len(request.body)]
        if request.size > DRAIN_LIMIT:
            self._too_large(request)

    def on_message_complete(self) -> None:
        self.request_timer.stop()
        request, self.request = self.request, None
        if request is None or request.close_after:
            return
        self._enqueue(request)

    def _too_large(self, request: _Request) -> None:
        """Stop reading a body past DRAIN_LIMIT: the length check fails it, then the connection closes."""
        assert self.transport is not None
        self.request_timer.stop()
        request.body = bytearray(self.limit)
        request.close_after = True
        self.request = None
        self.transport.pause_reading()
        self._enqueue(request)

    def _enqueue(self, request: _Request) -> None:
        self.queue.append(request)
        if self.answering is None:
            self.answering = self.loop.create_task(self._answer_all())
            self.server_state.tasks.add(self.answering)

    # -- answering ------------------------------------------------------------------------------
    async def _answer_all(self) -> None:
        try:
            while self.queue and self.transport is not None and not self.transport.is_closing():
                request = self.queue.popleft()
                if request.refused is not None:
                    self._reject(request.refused_status, request.refused)
                    return
                if request.close_after or not request.keep_alive:
                    self.closing = True  # before the answer, so that it says `connection: close`
                try:
                    await self._answer(request)
                except ConnectionError:  # the client's choice, not the server's fault
                    log.debug("the client of %s went away before its answer was written", request.path)
                    self.closing = True
                    return
                except Exception:
                    log.exception("InvokeEndpoint broke off its answer to %s", request.path)
                    self.closing = True
                    return
                self.server_state.total_requests += 1
                if self.closing:
                    break
        finally:
            self.server_state.tasks.discard(self.answering)
            self.answering = None
            if self.closing:
                if self.transport is not None:
                    self.transport.close()
            else:
                self._arm_keep_alive()

    async def _answer(self, request: _Request) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
                 "method": "POST", "scheme": self.scheme, "path": request.path, "raw_path": request.path.encode(),
                 "query_string": request.query, "headers": request.headers, "root_path": ""}
        sent_body = False

        async def receive() -> dict:
            nonlocal sent_body
            if sent_body:
                return {"type": "http.disconnect"}
            sent_body = True
            return {"type": "http.request", "body": bytes(request.body), "more_body": False}

        writer = _ResponseWriter(self)
        await self.handler(request.endpoint, scope, receive, writer.send)
        if not writer.finished:  # the handler broke off a streamed answer: the body is cut short
            self.closing = True

    # -- keep-alive ---------------------------------------------------------------------------
    def _arm_keep_alive(self) -> None:
        self.keep_alive_timer = self.loop.call_later(self.config.timeout_keep_alive, self._idle_timeout)

    def _disarm_keep_alive(self) -> None:
        if self.keep_alive_timer is not None:
            self.keep_alive_timer.cancel()
            self.keep_alive_timer = None

    def _idle_timeout(self) -> None:
        if self.transport is not None and self.request is None and self.answering is None:
            self.transport.close()

    # -- a request that does not arrive in time (forklift.api.edge) -----------------------------
    def _watch(self) -> None:
        """After a read that left a request incomplete: a timer on the deadline of the part awaited."""
        if self.head or self.head_budget.open:
            self.request_timer.arm(self.loop, "head", self.head_deadline, self._head_timed_out)
        else:
            self.request_timer.arm(self.loop, "body", self.body_deadline, self._body_timed_out)

    def _head_timed_out(self) -> None:
        self._time_out(head_timeout_answer(self.limits.head_timeout))

    def _body_timed_out(self) -> None:
        self._time_out(body_timeout_answer(self.limits.body_timeout))

    def _time_out(self, answer: bytes) -> None:
        """Drop the request still arriving (never handled), then answer 408 and close: now when idle,
        else after the answers to the requests before it."""
        log.debug("closing a connection: a request did not arrive in time")
        self.request = None
        self.head.clear()
        if self.transport is None or self.transport.is_closing():
            return
        if not self.queue and self.answering is None:
            self.transport.write(answer)
            self.transport.close()
            self.closing = True
            return
        self.transport.pause_reading()
        self.closing = True


class _ResponseWriter:
    """ASGI `send` for one answer: the head goes out with the first body bytes, in one write."""

    def __init__(self, protocol: DataPlaneProtocol):
        self.protocol = protocol
        self.head: bytes | None = None
        self.chunked = False
        self.finished = False

    async def send(self, message: dict) -> None:
        protocol = self.protocol
        if message["type"] == "http.response.start":
            status = message["status"]
            lines = [STATUS_LINES.get(status) or status_line(status)]
            lines += [name + b": " + value + b"\r\n" for name, value in protocol.server_state.default_headers]
            has_length = False
            for name, value in message.get("headers", ()):
                has_length = has_length or name.lower() == b"content-length"
                lines.append(name + b": " + value + b"\r\n")
            if not has_length:
                self.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            if protocol.closing:
                lines.append(b"connection: close\r\n")
            lines.append(b"\r\n")
            self.head = b"".join(lines)
            return
        if message["type"] != "http.response.body" or self.finished:
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.chunked:
            out = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
        else:
            out = body
        if self.head is not None:
            out, self.head = self.head + out, None
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise ConnectionError("the client went away")
        if out:
            transport.write(out)
        if not more:
            self.finished = True
        elif not protocol.writable.is_set():
            await protocol.writable.wait()


def protocol_for(handler: Handler, limits: EdgeLimits | None = None) -> type[DataPlaneProtocol]:
    """The protocol class to give uvicorn (`Config(http=...)`) for a server whose InvokeEndpoint
    requests go to `handler(endpoint, scope, receive, send)`, bounded by `limits` (one count of
    connections for every connection of the server)."""
    limits = limits or EdgeLimits()
    fallback = type("ForkliftHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
    return type("ForkliftDataPlaneProtocol", (DataPlaneProtocol,), {
        "handler": staticmethod(handler), "limits": limits, "gate": ConnectionGate(limits), "fallback": fallback})
