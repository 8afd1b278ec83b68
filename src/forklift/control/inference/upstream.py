"""A small HTTP/1.1 keep-alive client for the instances' `POST /invocations`.

InvokeEndpoint's proxy hop must cost well under a millisecond. A general client (httpx: request
and response models, an anyio pool, per-request auth and cookie hooks) spends about 1 ms of CPU per
call here; this one writes the request in one `write`, parses the status line and headers with
`bytes` operations, and keeps idle connections per instance address. It speaks exactly what the
container contract needs: one request at a time per connection, answers framed by Content-Length,
chunked encoding, or the end of the connection.

    pool = UpstreamPool()
    answer = await pool.post("10.213.0.2", 8080, "/invocations", body, headers, timeout=60)
    answer.status, answer.headers["content-type"]; async for chunk in answer.chunks(): ...
    await answer.release()    # after the body was read (or on error): back to the pool or closed
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping

MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024


class UpstreamError(Exception):
    """The instance could not be reached or broke the protocol (ConnectionError-like)."""


class UpstreamConnectError(UpstreamError):
    """Nothing was sent: the request may go to another instance."""


class Answer:
    def __init__(self, pool: UpstreamPool, key: tuple[str, int], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, status: int, headers: dict[str, str]):
        self._pool, self._key, self._reader, self._writer = pool, key, reader, writer
        self.status = status
        self.headers = headers  # lower-cased names
        length = headers.get("content-length")
        self.length = int(length) if length is not None and length.isdigit() else None
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._reusable = headers.get("connection", "").lower() != "close" and (self.length is not None
                                                                                or self.chunked)
        self._done = False

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self._reader
        if self.length is not None:
            left = self.length
            while left:
                data = await reader.read(min(left, CHUNK))
                if not data:
                    raise UpstreamError("the instance closed the connection in the middle of its answer")
                left -= len(data)
                yield data
        elif self.chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                yield await reader.readexactly(size)
                await reader.readexactly(2)
        else:
            while data := await reader.read(CHUNK):
                yield data
        self._done = True

    async def release(self) -> None:
        """Return the connection to the pool when the answer was read whole; otherwise close it."""
        if self._done and self._reusable:
            self._pool._put(self._key, self._reader, self._writer)
        else:
            self._writer.close()


class UpstreamPool:
    def __init__(self, max_idle_per_address: int = 64):
        self._idle: dict[tuple[str, int], deque] = {}
        self.max_idle = max_idle_per_address

    def _put(self, key: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idle = self._idle.setdefault(key, deque())
        if len(idle) < self.max_idle and not writer.is_closing():
            idle.append((reader, writer))
        else:
            writer.close()

    def _take(self, key: tuple[str, int]):
        idle = self._idle.get(key)
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def post(self, host: str, port: int, path: str, body: bytes, headers: Mapping[str, str], *,
                   timeout: float, connect_timeout: float = 5.0) -> Answer:
        key = (host, port)
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        reused = self._take(key)
        if reused is not None:
            try:
                return await self._exchange(key, *reused, request, timeout)
            except (UpstreamConnectError, ConnectionError):
                pass  # the instance closed the idle connection meanwhile: a fresh one below
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        return await self._exchange(key, reader, writer, request, timeout)

    async def _exchange(self, key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                        timeout: float) -> Answer:
        try:
            writer.write(request)
            async with asyncio.timeout(timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            if not getattr(exc, "partial", b""):  # gone before answering anything: another instance may
                raise UpstreamConnectError(f"the instance closed the connection ({exc!r})") from None
            raise UpstreamError("the instance closed the connection in the middle of its answer") from None
        except asyncio.LimitOverrunError:
            writer.close()
            raise UpstreamError("the instance's answer headers are larger than 64 KiB") from None
        except BaseException:
            writer.close()
            raise
        lines = head[:-4].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            writer.close()
            raise UpstreamError(f"the instance answered something that is not HTTP: {lines[0][:80]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Answer(self, key, reader, writer, status, headers)

    def close(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
