"""Slow, stalled and greedy clients against a real `forklift serve`: each is answered or closed, never
left hanging, and never takes the server from others. Timeouts are made small through config.toml;
assertions are on what comes back (or that the connection closed), never on how long it took."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from conftest import Server, start_server, stop_server
from forklift.api import ApiServices, LogEvent, MemoryLogSource
from forklift.config import config_problems

PER_CLIENT = 8
CONFIG = f"""
[server]
request_head_timeout_seconds = 0.5
request_body_timeout_seconds = 0.5
keep_alive_timeout_seconds = 60
max_connections_per_client = {PER_CLIENT}
"""
TARGETS = [b"GET /ping HTTP/1.1", b"POST / HTTP/1.1", b"POST /endpoints/e/invocations HTTP/1.1"]
IDS = ["uvicorn", "awsjson", "invoke"]


def _start(home: Path, config: str) -> Server:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config)
    return start_server(home)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = _start(tmp_path_factory.mktemp("edge-home"), CONFIG)
    yield running
    stop_server(running)


def _address(server: Server) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _connect(server: Server, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(_address(server), timeout=30, source_address=(source, 0))


def _read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a hang fails on the 30 s timeout)."""
    received = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk


def _ping(sock: socket.socket) -> bytes:
    """One GET /ping on `sock`: its whole answer (uvicorn writes the head and the body apart)."""
    sock.sendall(b"GET /ping HTTP/1.1\r\nhost: forklift\r\n\r\n")
    received = bytearray()
    while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return bytes(received)


def _ping_once_admitted(server: Server, source: str = "127.0.0.1") -> bytes:
    """A ping on a new connection, tried again while refused (the server sees closes soon, not at once)."""
    deadline = time.monotonic() + 20
    while True:
        with _connect(server, source) as sock:
            try:
                answer = _ping(sock)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""
        if answer.startswith(b"HTTP/1.1 200 OK") or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def _length(received: bytes) -> int:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def _answers(received: bytes) -> list[bytes]:
    return [line for line in received.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def _body(received: bytes) -> dict:
    return json.loads(received.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("head", [b"G", b"POST /endpoints/", b"\r\n\r\n", b"GET /ping HTTP/1.1\r\nhost: forklift\r\n",
                                  b"POST / HTTP/1.1\r\nhost: forklift\r\nx-amz-target: SageMaker.ListTrainingJobs",
                                  b"POST /endpoints/e/invocations HTTP/1.1\r\nhost: forklift\r\n"],
                         ids=["one-byte", "invoke-prefix", "blank-lines", "uvicorn", "awsjson", "invoke"])
def test_a_head_never_completed_is_answered_408_and_closed(edge, head) -> None:
    with _connect(edge) as sock:
        sock.sendall(head)
        received = _read_to_close(sock)
    assert _answers(received) == [b"HTTP/1.1 408 Request Timeout"]
    assert _body(received)["__type"] == "RequestTimeout"
    assert "server.request_head_timeout_seconds" in _body(received)["message"]


def _post_head(target: bytes, length: int) -> bytes:
    return (target + b"\r\nhost: forklift\r\nx-amz-target: SageMaker.ListTrainingJobs\r\n"
            b"content-type: application/x-amz-json-1.1\r\ncontent-length: %d\r\n\r\n" % length)


@pytest.mark.parametrize("target", TARGETS[1:], ids=IDS[1:])
def test_a_lying_content_length_is_closed_and_the_request_not_handled(edge, target) -> None:
    # The part that came is a whole JSON document: a handler given it would answer 200 (or a 400).
    with _connect(edge) as sock:
        sock.sendall(_post_head(target, 1000) + b"{}")
        received = _read_to_close(sock)
    assert _answers(received) == [b"HTTP/1.1 408 Request Timeout"]
    assert "server.request_body_timeout_seconds" in _body(received)["message"]


@pytest.mark.parametrize("target", TARGETS[1:], ids=IDS[1:])
def test_a_dripped_body_is_closed_and_pings_are_answered_meanwhile(edge, target) -> None:
    pings = []
    with _connect(edge) as sock:
        sock.sendall(_post_head(target, 200) + b"{}")
        try:
            for _ in range(200):  # a byte at a time, each well within the body's bound, the whole far past it
                sock.sendall(b" ")
                pings.append(httpx.get(edge.url + "/ping", timeout=10).status_code)
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = _read_to_close(sock)
    assert _answers(received) == [b"HTTP/1.1 408 Request Timeout"]
    assert pings and set(pings) == {200}


def test_a_request_in_time_is_answered_on_the_same_connection_after_an_idle_pause(edge) -> None:
    with _connect(edge) as sock:
        for _ in range(2):
            assert _ping(sock).startswith(b"HTTP/1.1 200 OK")
            time.sleep(1)  # twice the head's bound: an idle connection is bound by the keep-alive only




def test_one_client_at_its_connection_limit_does_not_starve_another(edge) -> None:
    held = [_connect(edge) for _ in range(PER_CLIENT)]
    try:
        assert _ping(held[0]).startswith(b"HTTP/1.1 200 OK")  # handed to uvicorn: still counted
        with _connect(edge) as over:
            received = _read_to_close(over)
        assert _answers(received) == [b"HTTP/1.1 503 Service Unavailable"]
        assert _body(received)["__type"] == "ThrottlingException"
        assert "server.max_connections_per_client" in _body(received)["message"]
        with _connect(edge, source="127.0.0.2") as other:  # all of 127/8 is loopback on Linux
            assert _ping(other).startswith(b"HTTP/1.1 200 OK")
    finally:
        for sock in held:
            sock.close()
    # Once its connections are closed, the client is admitted again (the server sees the closes soon).
    assert _ping_once_admitted(edge).startswith(b"HTTP/1.1 200 OK")


def test_the_bound_on_all_connections_refuses_past_it_and_admits_again_below(tmp_path) -> None:
    server = _start(tmp_path / "home", "[server]\nmax_connections = 16\nkeep_alive_timeout_seconds = 60\n")
    try:
        held = [_connect(server, source=f"127.0.0.{2 + i % 4}") for i in range(16)]  # from four addresses
        with _connect(server, source="127.0.0.9") as over:
            received = _read_to_close(over)
        assert _answers(received) == [b"HTTP/1.1 503 Service Unavailable"]
        assert "server.max_connections in config.toml" in _body(received)["message"]
        assert _ping(held[0]).startswith(b"HTTP/1.1 200 OK")  # those admitted are served
        held.pop().close()
        assert _ping_once_admitted(server, "127.0.0.9").startswith(b"HTTP/1.1 200 OK")
        for sock in held:
            sock.close()
    finally:
        stop_server(server)


def test_clients_gone_midway_leave_no_error_in_the_servers_output(tmp_path) -> None:
    config = CONFIG.replace("keep_alive_timeout_seconds = 60", "keep_alive_timeout_seconds = 0.3")
    server = _start(tmp_path / "home", config)
    try:
        with _connect(server) as idle:  # an idle connection is closed after the keep-alive
            assert _read_to_close(idle) == b""
        for target in TARGETS[1:] + [b"POST /endpoints/e/invocations HTTP/1.0"]:
            with _connect(server) as sock:  # the body cut off by the client
                sock.sendall(_post_head(target, 1000) + b"{}")
            for _ in range(20):  # gone before the answer is written
                with _connect(server) as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.sendall(_post_head(target, 2) + b"{}")
        assert httpx.get(server.url + "/ping", timeout=10).status_code == 200
    finally:
        stderr = stop_server(server)
    assert "Traceback" not in stderr and "Exception" not in stderr and " failed" not in stderr, stderr


# -- FilterLogEvents: linear-time patterns and a bounded scan -------------------------------------

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def log_source() -> MemoryLogSource:
    source = MemoryLogSource()
    lines = ["a" * 100 + "b", "a" * 100 + "c", "x" * 5000, "a" * 30 + "b", "aaab" + "a" * 10_000]
    source.append(GROUP, "job/algo-1", *(LogEvent(1000 + i, line) for i, line in enumerate(lines * 5)))
    return source


def test_a_backtracking_pattern_on_long_lines_is_answered_right(log_source, serve_app) -> None:
    # Python's `re` would take longer than the age of the universe on the first line alone.
    logs = serve_app(ApiServices(log_source=log_source)).client("logs")
    found = logs.filter_log_events(logGroupName=GROUP, filterPattern="%(a+)+b%")
    assert [len(e["message"]) for e in found["events"]] == [101, 31, 10_004] * 5
    assert "nextToken" not in found


@pytest.mark.parametrize(("pattern", "named"), [("%(a)\\1%", "backreferences"), ("%a(?=b)%", "lookahead"),
                                                ("%(?<!a)b%", "lookbehind"), ("%a++%", "possessive quantifiers")])
def test_constructs_without_a_linear_match_are_refused(log_source, serve_app, pattern, named) -> None:
    logs = serve_app(ApiServices(log_source=log_source)).client("logs")
    with pytest.raises(ClientError) as excinfo:
        logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)
    error = excinfo.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert f"{pattern} uses {named}, which filter pattern regular expressions do not support" in error["Message"]


def test_a_scan_out_of_time_pages_with_a_token_and_loses_nothing(log_source, serve_app) -> None:
    whole = serve_app(ApiServices(log_source=log_source)).client("logs").filter_log_events(
        logGroupName=GROUP, filterPattern="%a+b%")
    logs = serve_app(ApiServices(log_source=log_source, filter_time_budget=0)).client("logs")
    pages, token, seen = 0, None, []
    while True:
        more = {"nextToken": token} if token else {}
        page = logs.filter_log_events(logGroupName=GROUP, filterPattern="%a+b%", **more)
        pages += 1
        seen += page["events"]
        token = page.get("nextToken")
        if not token:
            break
        assert page["searchedLogStreams"][0]["searchedCompletely"] is False
    assert pages > 5 and seen == whole["events"] and len(seen) == 15


def test_server_keys_are_checked_with_the_fix() -> None:
    assert config_problems({"server": {"max_connections_per_client": 0, "request_head_timeout_seconds": "10",
                                       "max_conections": 5}}) == [
        "server.max_connections_per_client = 0: must be an integer from 1 to 1000000",
        'server.request_head_timeout_seconds = "10": must be a number from 0.01 to 3600',
        "unknown key server.max_conections: did you mean server.max_connections?"]
