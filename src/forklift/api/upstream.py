"""A small HTTP/1.1 keep-alive client for the instances' `POST /invocations`.

InvokeEndpoint's proxy hop must cost little next to the model's own work. A general client
(httpx: request and response models, an anyio pool, per-request auth and cookie hooks) spends
about 1 ms of CPU per call here; this one is an asyncio protocol around httptools' response parser:
the request goes out in one `write`, the parser's callbacks fill in the answer, and idle
connections are kept per instance address. It speaks what the container contract needs: one
request at a time per connection, answers framed by Content-Length, chunked encoding, or the end
of the connection.

    pool = UpstreamPool()
    answer = await pool.post("10.213.0.2", 8080, "/invocations", body, headers, timeout=60)
    answer.status, answer.headers["content-type"]
    body = await answer.read()          # or: async for chunk in answer.chunks(): ...
    answer.release()                    # back to the pool when read whole, else closed

`timeout` bounds the whole exchange, from sending the request to the answer's last byte.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping

import httptools

MAX_HEAD = 64 * 1024
HEAD_TOO_LARGE = "the instance's answer headers are larger than 64 KiB"
PAUSE_ABOVE = 1024 * 1024  # buffered answer bytes before reading from the instance pauses


class UpstreamError(Exception):
    """The instance could not be reached or broke the protocol (ConnectionError-like)."""


class UpstreamConnectError(UpstreamError):
    """Nothing was answered: the request may go to another instance."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection to an instance; carries one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: UpstreamPool, key: tuple[str, int]) -> None:
        self.loop, self.pool, self.key = loop, pool, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.head: asyncio.Future | None = None  # resolved with the Answer once its headers are in
        self.answer: Answer | None = None
        self.received = 0  # bytes of the current answer, headers included
        self.header_list: list[tuple[bytes, bytes]] = []
        self.head_size = 0  # bytes of the header lines parsed so far

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(UpstreamError(f"the instance answered something that is not HTTP/1.1 ({exc})"))
        if self.answer is None and self.received > MAX_HEAD:
            self.fail(UpstreamError(HEAD_TOO_LARGE))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self.answer
        if answer is not None and not answer.complete and answer.until_close:
            answer.finish()  # an answer framed by the end of the connection
            return
        if self.received == 0:
            self.fail(UpstreamConnectError(f"the instance closed the connection ({exc or 'no answer'})"))
        else:
            self.fail(UpstreamError("the instance closed the connection in the middle of its answer"))

    # -- httptools callbacks --------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        self.header_list.append((name, value))

    def on_headers_complete(self) -> None:
        if self.head_size > MAX_HEAD:  # a head that ended within the read that took it past the limit
            self.fail(UpstreamError(HEAD_TOO_LARGE))
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.header_list}
        answer = Answer(self, self.parser.get_status_code(), headers, self.parser.should_keep_alive())
        self.answer = answer
        if self.head is not None and not self.head.done():
            self.head.set_result(answer)

    def on_body(self, body: bytes) -> None:
        if self.answer is not None:
            self.answer.add(body)

    def on_message_complete(self) -> None:
        if self.answer is not None:
            self.answer.finish()

    # -- the exchange ------------------------------------------------------------------------------
    def send(self, request: bytes) -> asyncio.Future:
        self._reset()
        self.head = self.loop.create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self.head

    def fail(self, error: BaseException) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        elif self.answer is not None and not self.answer.complete:
            self.answer.error = error
            self.answer.wake()
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Answer:
    def __init__(self, connection: _Connection, status: int, headers: dict[str, str], keep_alive: bool):
        self._connection = connection
        self.status = status
        self.headers = headers  # lower-cased names
        length = headers.get("content-length")
        self.length = int(length) if length is not None and length.isdigit() else None
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.until_close = self.length is None and not self.chunked
        self.keep_alive = keep_alive and not self.until_close
        self.complete = False
        self.error: BaseException | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None

    def add(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > PAUSE_ABOVE and self._connection.transport is not None:
            self._connection.transport.pause_reading()
        self.wake()

    def finish(self) -> None:
        self.complete = True
        if self._timer is not None:
            self._timer.cancel()
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        if not self.complete:
            return b"".join([chunk async for chunk in self.chunks()])
        if self.error is not None:
            raise self.error
        body = b"".join(self._chunks)
        self._chunks.clear()
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        transport = self._connection.transport
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= PAUSE_ABOVE // 2 and transport is not None and not self._connection.closed:
                    transport.resume_reading()
                yield chunk
            if self.error is not None:
                raise self.error
            if self.complete:
                return
            self._waiter = self._connection.loop.create_future()
            await self._waiter

    def release(self) -> None:
        """Return the connection to the pool when the answer was read whole; otherwise close it."""
        connection = self._connection
        if self._timer is not None:
            self._timer.cancel()
        if self.complete and self.keep_alive and not self._chunks and not connection.closed:
            connection._reset()
            if connection.transport is not None:
                connection.transport.resume_reading()  # `read()` of a complete answer leaves a pause in place
            connection.pool.put(connection)
        else:
            connection.close()


class UpstreamPool:
    def __init__(self, max_idle_per_address: int = 64):
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self.max_idle = max_idle_per_address

    def put(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) < self.max_idle:
            idle.append(connection)
        else:
            connection.close()

    def _take(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self, host: str, port: int, connect_timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(lambda: _Connection(loop, self, (host, port)), host,
                                                             port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        return connection

    async def post(self, host: str, port: int, path: str, body: bytes, headers: Mapping[str, str], *,
                   timeout: float, connect_timeout: float = 5.0) -> Answer:
        head = [f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        request = "".join(head).encode("latin-1") + b"\r\n" + body
        key = (host, port)
        connection = self._take(key)
        if connection is not None:
            try:
                return await self._exchange(connection, request, timeout)
            except UpstreamConnectError:
                pass  # the instance closed the idle connection meanwhile: a fresh one below
        connection = await self._connect(host, port, connect_timeout)
        return await self._exchange(connection, request, timeout)

    async def _exchange(self, connection: _Connection, request: bytes, timeout: float) -> Answer:
        loop = connection.loop
        timer = loop.call_later(timeout, connection.fail, TimeoutError())
        try:
            answer: Answer = await connection.send(request)
        except BaseException:
            timer.cancel()
            connection.close()
            raise
        if answer.complete:
            timer.cancel()
        else:
            answer._timer = timer
        return answer

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
