"""The routing table and the upstream client, without containers."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Self

import pytest

from forklift.api.upstream import PAUSE_ABOVE, UpstreamConnectError, UpstreamError, UpstreamPool
from forklift.control.inference.routing import EndpointRoute, Router, UnknownVariant, VariantRoute


def _route(router: Router, weights: dict[str, float], per_variant: int = 1) -> EndpointRoute:
    return EndpointRoute([VariantRoute(name, weight, [router.instance("e", f"{name}-{i}", f"10.0.0.{i}")
                                                      for i in range(per_variant)])
                          for name, weight in weights.items()])


def test_weighted_choice_is_exact_and_interleaved():
    route = _route(Router(), {"a": 0.7, "b": 0.3})
    picks = [route.pick()[0].name for _ in range(1000)]
    assert Counter(picks) == {"a": 700, "b": 300}
    assert "aaaa" not in "".join(picks)  # smooth: no long runs of one variant


def test_zero_weights_and_target_variant():
    route = _route(Router(), {"a": 0.0, "b": 1.0}, per_variant=2)
    assert {route.pick()[0].name for _ in range(10)} == {"b"}
    assert [route.pick("a")[1].container_name for _ in range(4)] == ["a-0", "a-1", "a-0", "a-1"]
    with pytest.raises(UnknownVariant):
        route.pick("c")


def test_publish_and_in_flight():
    router = Router()
    route = _route(router, {"a": 1.0})
    router.publish("e", route)
    assert router.get("e") is route
    route.pick()[1].in_flight += 1
    assert router.in_flight("e", {"a-0"}) == 1
    router.publish("e", None)
    assert router.get("e") is None


async def _serve(answers: list[bytes], closes_after_first: bool = False):
    """A server that answers each request with the next raw response from `answers`."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
                          .split(b":")[1])
            await reader.readexactly(length)
            writer.write(answers.pop(0))
            await writer.drain()
            if closes_after_first:
                break
        writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_upstream_content_length_chunked_and_reuse():
    async def scenario():
        server = await _serve([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                               b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"])
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool()
        first = await pool.post("127.0.0.1", port, "/invocations", b"[1]", {"Content-Type": "x"}, timeout=5)
        assert (first.status, first.headers["content-type"], await first.read()) == (200, "application/json", b"{}")
        first.release()
        second = await pool.post("127.0.0.1", port, "/invocations", b"[2]", {}, timeout=5)  # same connection
        assert (second.status, await second.read()) == (500, b"abcde")
        second.release()
        pool.close()
        server.close()
    asyncio.run(scenario())


def test_upstream_retries_an_idle_connection_the_instance_closed():
    async def scenario():
        answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"]
        server = await _serve(answers, closes_after_first=True)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool()
        for expected in (b"1", b"2"):
            answer = await pool.post("127.0.0.1", port, "/invocations", b"x", {}, timeout=5)
            assert await answer.read() == expected
            answer.release()
            await asyncio.sleep(0.05)  # the server closes its side meanwhile
        server.close()
        with pytest.raises(UpstreamConnectError):
            await pool.post("127.0.0.1", 1, "/invocations", b"x", {}, timeout=5)
        pool.close()
    asyncio.run(scenario())


def test_instance_that_refused_a_connection_is_skipped():
    route = _route(Router(), {"a": 1.0}, per_variant=2)
    route.pick()[1].refused_until = float("inf")  # a-0 refused
    assert {route.pick()[1].container_name for _ in range(6)} == {"a-1"}
    route.variants[0].instances[1].refused_until = float("inf")  # all refused: still answers
    assert route.pick()[1].container_name in {"a-0", "a-1"}


# -- the upstream client against a raw peer ------------------------------------------------------------
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class _Peer:
    """A raw TCP server: `handle(conn)` serves each connection; the connections it accepted, and
    those the client closed, are counted."""

    def __init__(self, handle: Callable[[_PeerConnection], Awaitable[None]]):
        self.handle = handle
        self.accepted = 0
        self.closed_by_client = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await self.handle(_PeerConnection(self, self.accepted - 1, reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            writer.close()


class _PeerConnection:
    def __init__(self, peer: _Peer, n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.peer, self.n, self.reader, self.writer = peer, n, reader, writer

    async def request(self) -> bytes:
        """Read one request (head and Content-Length body); returns the body."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        return await self.reader.readexactly(length)

    async def answer(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_client_closes(self) -> None:
        if await self.reader.read() == b"":
            self.peer.closed_by_client += 1


async def _post(pool: UpstreamPool, peer: _Peer, timeout: float = 2):
    return await pool.post("127.0.0.1", peer.port, "/invocations", b"[1]", {}, timeout=timeout)


def test_upstream_close_delimited_answer_is_read_whole_and_never_reused():
    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
        await asyncio.sleep(0.02)
        await conn.answer(b"second part of answer %d" % conn.n)  # then close: that ends the answer

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            for n in range(2):
                answer = await _post(pool, peer)
                assert (answer.status, answer.length, answer.until_close, answer.keep_alive) == (200, None, True, False)
                assert await answer.read() == b"first part, second part of answer %d" % n
                answer.release()
            assert peer.accepted == 2  # an answer framed by the close leaves nothing to reuse
            pool.close()
    asyncio.run(scenario())


def test_upstream_streams_a_large_answer_byte_exact_and_pauses_reading():
    body = os.urandom(5 * 1024 * 1024)

    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), 64 * 1024):
            await conn.answer(body[start:start + 64 * 1024])
        await conn.request()  # the connection is reused for the next request
        await conn.answer(OK)
        await conn.until_client_closes()

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            answer = await _post(pool, peer)
            assert answer.length == len(body)
            transport = answer._connection.transport
            await asyncio.sleep(0.1)  # a slow consumer: more than PAUSE_ABOVE arrives meanwhile
            received, paused_seen, most_buffered = [], False, 0
            async for chunk in answer.chunks():
                paused_seen = paused_seen or not transport.is_reading()
                most_buffered = max(most_buffered, answer._buffered + len(chunk))
                received.append(chunk)
            assert b"".join(received) == body
            assert paused_seen, "reading never paused although the consumer fell behind"
            assert most_buffered <= PAUSE_ABOVE + 256 * 1024  # at most one read past the threshold
            assert transport.is_reading()  # resumed once drained
            answer.release()
            again = await _post(pool, peer)
            assert await again.read() == b"ok"
            again.release()
            assert peer.accepted == 1
            pool.close()
    asyncio.run(scenario())


def test_upstream_reuses_a_connection_after_read_of_an_answer_that_paused_reading():
    """An answer just over PAUSE_ABOVE, complete before `read()`: the read pause must not outlive it,
    or the next answer on the pooled connection is never read."""
    body = b"x" * (PAUSE_ABOVE + 1)

    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await conn.request()
        await conn.answer(OK)
        await conn.until_client_closes()

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            answer = await _post(pool, peer)
            for _ in range(100):
                if answer.complete:
                    break
                await asyncio.sleep(0.01)
            assert answer.complete
            assert await answer.read() == body
            answer.release()
            again = await _post(pool, peer, timeout=1)
            assert await again.read() == b"ok"
            again.release()
            assert peer.accepted == 1
            pool.close()
    asyncio.run(scenario())


def test_upstream_timeout_bounds_the_exchange_and_drops_the_connection():
    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        if conn.n > 0:  # the first connection never answers
            await conn.answer(OK)
        await conn.until_client_closes()

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await _post(pool, peer, timeout=0.3)
            assert 0.29 <= time.monotonic() - started < 0.8
            answer = await _post(pool, peer)
            assert await answer.read() == b"ok"
            answer.release()
            assert peer.accepted == 2  # the timed-out connection never went back to the pool
            await asyncio.sleep(0.05)
            assert peer.closed_by_client == 1
            pool.close()
    asyncio.run(scenario())


def test_upstream_timeout_while_the_body_trickles():
    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await conn.until_client_closes()

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            started = time.monotonic()
            answer = await _post(pool, peer, timeout=0.3)
            with pytest.raises(TimeoutError):
                await answer.read()
            assert 0.29 <= time.monotonic() - started < 0.8
            answer.release()
            await asyncio.sleep(0.05)
            assert peer.closed_by_client == 1
            pool.close()
    asyncio.run(scenario())


def test_upstream_garbage_is_an_upstream_error_not_a_connect_error():
    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        await conn.answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await conn.until_client_closes()

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            with pytest.raises(UpstreamError, match="not HTTP/1.1") as excinfo:
                await _post(pool, peer)
            assert not isinstance(excinfo.value, UpstreamConnectError)  # it answered: no retry elsewhere
            await asyncio.sleep(0.05)
            assert peer.closed_by_client == 1
            pool.close()
    asyncio.run(scenario())


BIG_HEADER = b"X-Big: " + b"a" * (65 * 1024) + b"\r\n"


@pytest.mark.parametrize("answer", [
    pytest.param(b"HTTP/1.1 200 OK\r\n" + BIG_HEADER + b"Content-Length: 2\r\n\r\nok", id="whole-head-at-once"),
    pytest.param(b"HTTP/1.1 200 OK\r\n" + BIG_HEADER, id="head-never-ends"),
    pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1234567890\r\n" * 4000 + b"Content-Length: 2\r\n\r\nok",
                 id="many-headers"),
])
def test_upstream_answer_headers_over_64_kib_are_an_error(answer):
    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        await conn.answer(answer)
        await conn.until_client_closes()

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            with pytest.raises(UpstreamError, match="larger than 64 KiB"):
                await _post(pool, peer)
            pool.close()
    asyncio.run(scenario())


@pytest.mark.parametrize("answer", [
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", id="content-length"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n0123456789", id="chunked"),
])
def test_upstream_close_in_the_middle_of_the_body_fails_read(answer):
    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        await conn.answer(answer)
        await asyncio.sleep(0.02)  # then close

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            answer = await _post(pool, peer)
            assert answer.status == 200
            with pytest.raises(UpstreamError, match="in the middle of its answer"):
                await answer.read()
            answer.release()
            assert pool._take(("127.0.0.1", peer.port)) is None
            pool.close()
    asyncio.run(scenario())


@pytest.mark.parametrize("read_part", [True, False], ids=["partly-read", "unread"])
def test_upstream_answer_not_read_whole_closes_its_connection(read_part):
    async def handle(conn: _PeerConnection) -> None:
        await conn.request()
        if conn.n == 0:
            # Half of the body, the rest never (partly-read); or all of it (unread).
            await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234" + (b"" if read_part else b"56789"))
        else:
            await conn.answer(OK)
        await conn.until_client_closes()

    async def scenario():
        async with _Peer(handle) as peer:
            pool = UpstreamPool()
            answer = await _post(pool, peer)
            if read_part:
                async for chunk in answer.chunks():
                    assert chunk == b"01234"
                    break
            else:
                await asyncio.sleep(0.05)
                assert answer.complete
            answer.release()
            again = await _post(pool, peer)
            assert await again.read() == b"ok"
            again.release()
            assert peer.accepted == 2
            await asyncio.sleep(0.05)
            assert peer.closed_by_client == 1  # the first connection, closed at release
            pool.close()
    asyncio.run(scenario())
