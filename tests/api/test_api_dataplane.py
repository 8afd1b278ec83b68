"""The data-plane protocol of `forklift serve` (forklift.api.dataplane) byte by byte over raw sockets:
InvokeEndpoint answered by it, everything else handed to uvicorn, and HTTP/1.1's edge cases.

No endpoint exists on this server, so every InvokeEndpoint is answered `ValidationError`
"Endpoint X of account N not found." -- after its body was read whole, which is what most of these
tests need. A real container's answer is in tests/inference/test_inference_dataplane.py.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

MAX_BODY = 6 * 1024 * 1024  # InvokeEndpoint's Body max in botocore's model
DRAIN_LIMIT = 64 * 1024 * 1024
LENGTH_ERROR = ("1 validation error detected: Value at 'body' failed to satisfy constraint: "
                "Member must have length less than or equal to 6291456")


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # lower-cased names, in wire order
    body: bytes
    chunks: int  # 0: framed by Content-Length

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key == name.lower()]
        assert len(values) <= 1, f"{name} appears {len(values)} times"
        return values[0] if values else None

    def json(self) -> dict:
        return json.loads(self.body)


class Wire:
    """One client connection: raw bytes out, answers parsed strictly off the socket."""

    def __init__(self, url: str, timeout: float = 10):
        address = urlsplit(url)
        self.sock = socket.create_connection((address.hostname, address.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError(f"the server closed the connection; unparsed: {bytes(self.buffer[:200])!r}")
        self.buffer += data

    def _take_until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            self._fill()
        data = bytes(self.buffer[:end])
        del self.buffer[:end + len(marker)]
        return data

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def interim(self) -> bytes:
        """The next head only (e.g. a 100 Continue), bytes exact."""
        return self._take_until(b"\r\n\r\n") + b"\r\n\r\n"

    def answer(self) -> Answer:
        """The next answer; its framing must be exactly one Content-Length or chunked encoding."""
        head = self._take_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, status, _ = head[0].split(" ", 2)
        assert version == "HTTP/1.1", head[0]
        headers = []
        for line in head[1:]:
            name, value = line.split(":", 1)
            assert name == name.strip() and name, line
            headers.append((name.lower(), value.strip()))
        lengths = [value for name, value in headers if name == "content-length"]
        encodings = [value for name, value in headers if name == "transfer-encoding"]
        assert (len(lengths), encodings) in ((1, []), (0, ["chunked"])), headers
        if lengths:
            return Answer(int(status), headers, self._take(int(lengths[0])), 0)
        body, chunks = bytearray(), 0
        while size := int(self._take_until(b"\r\n"), 16):
            body += self._take(size)
            assert self._take(2) == b"\r\n"
            chunks += 1
        assert self._take(2) == b"\r\n"  # no trailers
        return Answer(int(status), headers, bytes(body), chunks)

    def invoke_answer(self) -> Answer:
        """The next answer, one of InvokeEndpoint's: carries a request id in UUID form."""
        answer = self.answer()
        request_id = answer.header("x-amzn-RequestId")
        assert request_id is not None and str(uuid.UUID(request_id)) == request_id, answer.headers
        return answer

    def closed(self, within: float = 5) -> bool:
        """True when the server closes the connection within `within` seconds (and sent nothing more)."""
        self.sock.settimeout(within)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        assert not data and not self.buffer, f"unexpected bytes: {bytes(self.buffer) + data!r}"
        return True


def invoke(endpoint: str, body: bytes = b"{}", *headers: str) -> bytes:
    lines = [f"POST /endpoints/{endpoint}/invocations HTTP/1.1", "Host: localhost",
             "Content-Type: application/json", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def list_endpoints() -> bytes:
    return (b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: SageMaker.ListEndpoints\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}")


def assert_not_found(answer: Answer, endpoint: str) -> None:
    assert (answer.status, answer.header("x-amzn-ErrorType")) == (400, "ValidationError")
    assert answer.json() == {"Message": f"Endpoint {endpoint} of account 000000000000 not found."}


@pytest.fixture
def wire(server):
    connection = Wire(server.url)
    yield connection
    connection.close()


def test_invoke_then_another_operation_then_invoke_on_one_connection(wire):
    wire.send(invoke("first"))
    first = wire.invoke_answer()
    assert_not_found(first, "first")
    assert first.header("connection") is None  # kept alive
    wire.send(list_endpoints())  # hands the connection to uvicorn's protocol
    listed = wire.answer()
    assert listed.status == 200 and "Endpoints" in listed.json()
    assert listed.header("x-amzn-RequestId")
    wire.send(invoke("third"))
    third = wire.invoke_answer()
    assert_not_found(third, "third")
    assert len({first.header("x-amzn-RequestId"), third.header("x-amzn-RequestId")}) == 2


@pytest.mark.parametrize("request_bytes,cut", [
    (invoke("split-line"), len(b"POST /endpo")),
    (invoke("split-line"), len(b"POST /endpoints/split-line/invocations HTTP/1.1")),  # before the CRLF
    (invoke("split-line"), len(b"POST /endpoints/split-line/invocations HTTP/1.1\r\nHost: lo")),
    (list_endpoints(), len(b"POST /")),  # looked like an InvokeEndpoint until the rest came
], ids=["in-the-path", "before-crlf", "in-a-header", "list-endpoints"])
def test_request_split_across_sends(wire, request_bytes, cut):
    wire.send(request_bytes[:cut])
    time.sleep(0.2)
    wire.send(request_bytes[cut:])
    answer = wire.answer()
    if request_bytes.startswith(b"POST /endpoints/"):
        assert_not_found(answer, "split-line")
    else:
        assert answer.status == 200 and "Endpoints" in answer.json()
    wire.send(invoke("after-split"))  # still in step
    assert_not_found(wire.invoke_answer(), "after-split")


def test_pipelined_invokes_are_answered_in_order(wire):
    wire.send(invoke("one", b"[1]") + invoke("two", b"[2, 2]") + invoke("three"))
    answers = [wire.invoke_answer() for _ in range(3)]
    for answer, name in zip(answers, ("one", "two", "three"), strict=True):
        assert_not_found(answer, name)
    assert len({answer.header("x-amzn-RequestId") for answer in answers}) == 3
    assert not wire.closed(within=0.2)


def test_other_request_pipelined_behind_an_invoke_is_refused(wire):
    wire.send(invoke("before-ping") + b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert_not_found(wire.invoke_answer(), "before-ping")
    refused = wire.answer()
    assert refused.status == 400
    assert refused.header("connection") == "close"
    assert refused.body == b"Only InvokeEndpoint requests may be pipelined on this connection."
    assert wire.closed()


def test_expect_100_continue(wire):
    body = b'{"rows": [[1, 2]]}'
    wire.send(invoke("expecting", body, "Expect: 100-continue").removesuffix(body))
    assert wire.interim() == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body byte was sent
    wire.send(body)
    assert_not_found(wire.invoke_answer(), "expecting")


def test_expect_100_continue_with_a_length_over_the_drain_limit_gets_no_continue(wire):
    wire.send(f"POST /endpoints/huge/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: {DRAIN_LIMIT + 1}"
              f"\r\nExpect: 100-continue\r\n\r\n".encode())
    answer = wire.invoke_answer()  # the final answer at once: no invitation to send 64 MiB that nobody reads
    assert (answer.status, answer.json()) == (400, {"Message": LENGTH_ERROR})
    assert wire.closed()


def chunked(endpoint: str, body: bytes, piece: int) -> bytes:
    head = (f"POST /endpoints/{endpoint}/invocations HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    return head + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + piece]), body[i:i + piece])
                           for i in range(0, len(body), piece)) + b"0\r\n\r\n"


def test_chunked_request_body(wire):
    wire.send(chunked("chunky", b'{"rows": [[1, 2], [3, 4]]}', 5))
    assert_not_found(wire.invoke_answer(), "chunky")
    wire.send(chunked("too-big", b"x" * (MAX_BODY + 1), 1 << 20))  # the chunks add up to one byte too many
    too_big = wire.invoke_answer()
    assert (too_big.status, too_big.header("x-amzn-ErrorType")) == (400, "ValidationError")
    assert too_big.json() == {"Message": LENGTH_ERROR}
    wire.send(invoke("after-chunks"))
    assert_not_found(wire.invoke_answer(), "after-chunks")


def test_body_at_and_over_6_mib(wire):
    wire.send(invoke("largest", b"x" * MAX_BODY))
    assert_not_found(wire.invoke_answer(), "largest")  # 6 MiB is allowed
    wire.send(invoke("too-large", b"x" * (MAX_BODY + 1)))
    answer = wire.invoke_answer()
    assert (answer.status, answer.header("x-amzn-ErrorType")) == (400, "ValidationError")
    assert answer.json() == {"Message": LENGTH_ERROR}
    assert answer.header("connection") is None
    wire.send(invoke("after-large"))  # the body was read to its end: the connection goes on
    assert_not_found(wire.invoke_answer(), "after-large")


def test_declared_length_over_the_drain_limit_is_answered_then_closed(wire):
    wire.send(f"POST /endpoints/huge/invocations HTTP/1.1\r\nHost: localhost\r\n"
              f"Content-Length: {DRAIN_LIMIT + 1}\r\n\r\n".encode())  # and not one body byte
    answer = wire.invoke_answer()
    assert (answer.status, answer.json()) == (400, {"Message": LENGTH_ERROR})
    assert answer.header("connection") == "close"
    assert wire.closed()


def test_chunked_body_past_the_drain_limit_is_answered_then_closed(wire):
    size = DRAIN_LIMIT + 1
    wire.send(f"POST /endpoints/huge/invocations HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
              f"{size:x}\r\n".encode())
    piece = b"x" * (1 << 20)
    for _ in range(size // len(piece)):
        wire.send(piece)
    wire.send(b"x")  # the byte past the limit; the chunk's end is never sent
    answer = wire.invoke_answer()
    assert (answer.status, answer.json()) == (400, {"Message": LENGTH_ERROR})
    assert answer.header("connection") == "close"
    assert wire.closed()


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello: uvicorn's protocol rejects it
    b"POST /endpoints/bad-header/invocations HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n",
    b"POST /endpoints/bad-length/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: twelve\r\n\r\n",
    (b"POST /endpoints/bad-chunk/invocations HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nabc\r\n0\r\n\r\n"),
], ids=["tls-hello", "header-without-colon", "bad-content-length", "bad-chunk-size"])
def test_malformed_request_is_400_and_closed(wire, garbage):
    wire.send(garbage)
    answer = wire.answer()
    assert answer.status == 400
    assert answer.header("connection") == "close"
    assert answer.body == b"Invalid HTTP request received."
    assert wire.closed()


def test_malformed_request_after_an_answer_is_400_and_closed(wire):
    wire.send(invoke("fine"))
    assert_not_found(wire.invoke_answer(), "fine")
    wire.send(b"POST /endpoints/fine/invocations HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
    answer = wire.answer()
    assert (answer.status, answer.header("connection")) == (400, "close")
    assert wire.closed()


def test_connection_close_is_answered_then_closed(wire):
    wire.send(invoke("closing", b"{}", "Connection: close"))
    answer = wire.invoke_answer()
    assert_not_found(answer, "closing")
    assert answer.header("connection") == "close"
    assert wire.closed()


def test_http_1_0_invoke_is_answered_then_closed(wire):
    wire.send(invoke("old-client").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    answer = wire.invoke_answer()
    assert_not_found(answer, "old-client")
    assert wire.closed()


def test_invoke_with_query_string_and_other_methods_on_the_path(wire):
    # InvokeEndpoint has no query string: with one, the app decides, by the signature's service.
    runtime = ("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sagemaker/aws4_request, "
               "SignedHeaders=host, Signature=00")
    wire.send(invoke("queried", b"{}", runtime).replace(b"/invocations ", b"/invocations?x=1&y=2 ", 1))
    assert_not_found(wire.answer(), "queried")
    wire.send(invoke("queried").replace(b"/invocations ", b"/invocations?uploads ", 1))  # unsigned: S3's
    answer = wire.answer()
    assert answer.status == 404 and b"<Code>NoSuchBucket</Code>" in answer.body
    wire.send(f"GET /endpoints/queried/invocations HTTP/1.1\r\nHost: localhost\r\n{runtime}\r\n\r\n".encode())
    answer = wire.answer()
    assert (answer.status, answer.json()) == (404, {"__type": "UnknownOperationException",
                                                    "message": "No route for GET /endpoints/queried/invocations"})


@pytest.mark.slow
def test_idle_connection_is_closed_after_the_keep_alive_timeout(wire):
    wire.send(invoke("idle"))
    assert_not_found(wire.invoke_answer(), "idle")
    assert not wire.closed(within=2)  # uvicorn's timeout_keep_alive is 5 s
    wire.send(invoke("idle"))  # a request restarts the clock
    assert_not_found(wire.invoke_answer(), "idle")
    answered = time.monotonic()
    assert wire.closed(within=8)
    assert 4.5 < time.monotonic() - answered < 6.5


def test_graceful_shutdown_closes_idle_connections(launch, stop):
    own = launch()
    idle, handed_over = Wire(own.url), Wire(own.url)
    try:
        idle.send(invoke("before-stop"))
        assert_not_found(idle.invoke_answer(), "before-stop")
        handed_over.send(list_endpoints())
        assert handed_over.answer().status == 200
        started = time.monotonic()
        stop(own)
        assert own.process.returncode == 0
        assert time.monotonic() - started < 5  # no wait for the idle connections to time out
        assert idle.closed(within=1) and handed_over.closed(within=1)
    finally:
        idle.close()
        handed_over.close()


def test_malformed_request_pipelined_behind_an_invoke(wire):
    wire.send(invoke("before-garbage") + b"NOT HTTP AT ALL\r\n\r\n")
    assert_not_found(wire.invoke_answer(), "before-garbage")  # the valid request still gets its own answer
    refused = wire.answer()
    assert (refused.status, refused.header("connection")) == (400, "close")
    assert refused.body == b"Invalid HTTP request received."
    assert wire.closed()


def test_graceful_shutdown_answers_the_request_being_received(launch):
    own = launch()
    wire = Wire(own.url)
    try:
        wire.send(invoke("before-stop"))  # the server is up (it binds its port before it serves)
        assert_not_found(wire.invoke_answer(), "before-stop")
        request = invoke("mid-upload", b"[" + b"1, " * 1000 + b"1]")
        wire.send(request[:-100])
        time.sleep(0.2)
        own.process.terminate()
        time.sleep(0.5)  # uvicorn has asked every connection to shut down by now
        assert own.process.poll() is None  # ... and waits for this one
        wire.send(request[-100:])
        answer = wire.invoke_answer()
        assert_not_found(answer, "mid-upload")
        assert answer.header("connection") == "close"
        assert wire.closed()
        assert own.process.wait(10) == 0
    finally:
        wire.close()
