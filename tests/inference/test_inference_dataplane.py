"""A real container's answers through the data-plane protocol, checked on the wire (raw sockets):
an answer over 256 KiB is streamed back chunked and complete, and the connection goes on; a client
gone before or during its answer costs the server a debug line, not an error."""

from __future__ import annotations

import json
import socket
import struct
import threading
import uuid
from urllib.parse import urlsplit

import pytest
from inference_support import deploy

ROWS = [[i, i] for i in range(60000)]  # about 1 MB in, 0.7 MB of predictions out: more than READ_WHOLE
EXPECTED = [5.0 * i + 1 for i in range(60000)]  # weights (2, 3), bias 1


@pytest.fixture(scope="module")
def endpoint(server, inference_image) -> str:
    return deploy(server.client("sagemaker"), server, inference_image)


class _Wire:
    def __init__(self, url: str):
        address = urlsplit(url)
        self.sock = socket.create_connection((address.hostname, address.port), timeout=30)
        self.buffer = bytearray()

    def _until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            data = self.sock.recv(1 << 16)
            assert data, f"closed early; unparsed: {bytes(self.buffer[:200])!r}"
            self.buffer += data
        taken = bytes(self.buffer[:end])
        del self.buffer[:end + len(marker)]
        return taken

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(1 << 20)
            assert data, "closed in the middle of a body"
            self.buffer += data
        taken = bytes(self.buffer[:size])
        del self.buffer[:size]
        return taken

    def answer(self) -> tuple[int, dict[str, str], bytes, int]:
        """status, headers (lower-cased names, each once), body, number of chunks (0: Content-Length)."""
        status_line, *lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        pairs = [(name.lower(), value.strip()) for name, value in (line.split(":", 1) for line in lines)]
        headers = dict(pairs)
        assert len(headers) == len(pairs), pairs
        assert ("content-length" in headers) != (headers.get("transfer-encoding") == "chunked"), headers
        status = int(status_line.split(" ")[1])
        if "content-length" in headers:
            return status, headers, self._exactly(int(headers["content-length"])), 0
        body, chunks = bytearray(), 0
        while size := int(self._until(b"\r\n"), 16):
            body += self._exactly(size)
            assert self._exactly(2) == b"\r\n"
            chunks += 1
        assert self._exactly(2) == b"\r\n"
        return status, headers, bytes(body), chunks


def _invoke(endpoint: str, rows) -> bytes:
    body = json.dumps(rows).encode()
    return (f"POST /endpoints/{endpoint}/invocations HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _check_large(status: int, headers: dict[str, str], body: bytes, chunks: int) -> None:
    assert status == 200
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert chunks >= 2, "a streamed answer arrives in pieces"
    assert len(body) > 256 * 1024
    assert json.loads(body)["predictions"] == EXPECTED
    assert headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert str(uuid.UUID(headers["x-amzn-requestid"])) == headers["x-amzn-requestid"]


def test_large_answer_is_streamed_back_whole_and_the_connection_goes_on(server, endpoint):
    wire = _Wire(server.url)
    try:
        wire.sock.sendall(_invoke(endpoint, ROWS))
        _check_large(*wire.answer())
        wire.sock.sendall(_invoke(endpoint, [[1, 2]]))  # small: read whole, framed by Content-Length
        status, _, body, chunks = wire.answer()
        assert (status, chunks, json.loads(body)["predictions"]) == (200, 0, [9.0])
    finally:
        wire.sock.close()


def test_pipelined_large_and_small_answers_come_back_in_order(server, endpoint):
    wire = _Wire(server.url)
    try:
        wire.sock.sendall(_invoke(endpoint, ROWS) + _invoke(endpoint, [[0, 1]]))
        _check_large(*wire.answer())
        status, _, body, _ = wire.answer()
        assert (status, json.loads(body)["predictions"]) == (200, [4.0])
    finally:
        wire.sock.close()


def _gone(url: str, request: bytes, read: int = 0, linger: float = 0.0) -> None:
    """Send `request`, read `read` bytes of its answer (or wait `linger` s), then reset the connection."""
    wire = _Wire(url)
    wire.sock.sendall(request)
    if read:
        wire._exactly(read)
    threading.Event().wait(linger)
    wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wire.sock.close()


def test_clients_gone_before_or_during_their_answer_leave_no_error_in_the_log(server, endpoint):
    logged = len(server.log())
    slow = (f"POST /endpoints/{endpoint}/invocations HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/json\r\nContent-Length: 4\r\n\r\nslow").encode()
    for _ in range(3):
        _gone(server.url, slow, linger=0.2)  # while the container works on it (it answers after 1 s)
        _gone(server.url, _invoke(endpoint, ROWS), read=4096)  # in the middle of a streamed answer
    wire = _Wire(server.url)
    wire.sock.sendall(slow)  # answered after those before it were given up
    assert wire.answer()[0] == 200
    wire.sock.sendall(_invoke(endpoint, ROWS))
    _check_large(*wire.answer())
    log = server.log()[logged:]
    assert "Traceback" not in log and "ERROR" not in log and "broke off" not in log, log
