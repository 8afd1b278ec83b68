"""The routing table and the upstream client, without containers."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from forklift.control.inference.routing import EndpointRoute, Router, UnknownVariant, VariantRoute
from forklift.control.inference.upstream import UpstreamConnectError, UpstreamPool


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
                               b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"])
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool()
        first = await pool.post("127.0.0.1", port, "/invocations", b"[1]", {"Content-Type": "x"}, timeout=5)
        assert (first.status, first.headers["content-type"], await first.read()) == (200, "application/json", b"{}")
        await first.release()
        second = await pool.post("127.0.0.1", port, "/invocations", b"[2]", {}, timeout=5)  # same connection
        assert (second.status, await second.read()) == (500, b"abcde")
        await second.release()
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
            await answer.release()
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
