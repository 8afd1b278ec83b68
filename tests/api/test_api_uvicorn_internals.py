"""What `forklift.api.dataplane` relies on in uvicorn beyond its documented API.

The data plane is a protocol class handed to uvicorn (`Config(http=...)`) that hands connections it
does not answer itself to uvicorn's own protocol. That leans on uvicorn internals; pyproject.toml
bounds uvicorn to releases checked here, and when a new release changes one of them this test says
which, so a bump fails here with a name instead of as hung connections in the data-plane tests.
"""

from __future__ import annotations

import asyncio
import inspect
import socket

import pytest
import uvicorn

pytestmark = pytest.mark.anyio


def _internal(name: str, what: str) -> str:
    return f"uvicorn internal changed: {name} ({what}); forklift.api.dataplane relies on it"


async def _app(scope, receive, send):  # an ASGI app the recorder never calls
    raise AssertionError("not reached")


class _Recorder(asyncio.Protocol):
    """Stands in for DataPlaneProtocol: records how uvicorn builds, tracks and shuts it down."""

    built: list[dict] = []
    shut_down: list[bool] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.built.append(kwargs)

    def connection_made(self, transport):
        self.transport = transport
        self.kwargs["server_state"].connections.add(self)

    def connection_lost(self, exc):
        self.kwargs["server_state"].connections.discard(self)

    def shutdown(self):
        self.shut_down.append(True)
        self.transport.close()


def test_fallback_protocol_is_importable():
    try:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol
    except ImportError as exc:
        pytest.fail(_internal("uvicorn.protocols.http.auto.AutoHTTPProtocol", f"cannot import: {exc}"))
    try:
        inspect.signature(AutoHTTPProtocol).bind(config=None, server_state=None, app_state={}, _loop=None)
    except TypeError as exc:
        pytest.fail(_internal("AutoHTTPProtocol(config, server_state, app_state, _loop)", str(exc)))


def test_httptools_protocol_has_the_hooks_the_head_bounds_override():
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError as exc:
        pytest.fail(_internal("uvicorn.protocols.http.httptools_impl.HttpToolsProtocol", f"cannot import: {exc}"))
    for name, params in [("data_received", ["data"]), ("send_400_response", ["msg"]), ("on_message_begin", []),
                         ("on_url", ["url"]), ("on_header", ["name", "value"]), ("on_headers_complete", [])]:
        method = getattr(HttpToolsProtocol, name, None)
        if method is None or list(inspect.signature(method).parameters)[1:] != params:
            pytest.fail(_internal(f"HttpToolsProtocol.{name}({', '.join(params)})", "missing or changed"))
    source = inspect.getsource(HttpToolsProtocol.data_received)
    if "except httptools.HttpParserError" not in source or "send_400_response" not in source:
        pytest.fail(_internal("HttpToolsProtocol.data_received", "a parser error no longer goes to send_400_response"))


async def test_protocol_class_is_built_tracked_and_shut_down_as_the_data_plane_expects():
    _Recorder.built.clear()
    _Recorder.shut_down.clear()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_app, http=_Recorder, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    reader, writer = await asyncio.open_connection(*sock.getsockname())
    for _ in range(200):
        if _Recorder.built:
            break
        await asyncio.sleep(0.01)

    assert _Recorder.built, _internal("Config(http=<class>)", "a protocol class given as http= is not used")
    kwargs = _Recorder.built[0]
    assert set(kwargs) >= {"config", "server_state", "app_state"}, _internal(
        "protocol construction", f"the class is built with {sorted(kwargs)}, not config, server_state, app_state")
    assert isinstance(kwargs["server_state"].connections, set), _internal(
        "ServerState.connections", "no longer a set of live protocols")

    server.should_exit = True
    await asyncio.wait_for(serving, 10)
    assert _Recorder.shut_down == [True], _internal(
        "Server.shutdown", "no longer calls shutdown() on each protocol in server_state.connections")
    assert await reader.read() == b""
    writer.close()
