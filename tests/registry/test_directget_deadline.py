"""The direct blob path's deadline covers the head of the answer too, not only its body.

A real socket server on loopback sends a status line and then one header byte now and then: each
read returns within the socket timeout, so only the deadline armed before connecting ends it.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from forklift.registry.directget import direct_get
from forklift.registry.timeouts import Timeouts


@pytest.fixture
def dripping_head() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
                    while not stop.wait(0.2):
                        conn.sendall(b"a")
                except OSError:
                    pass  # the client hung up: what the test wants

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(10)
    listener.close()


def test_a_dripped_head_is_hung_up_at_the_deadline(dripping_head):
    timeouts = Timeouts(connect=1.0, first_byte=1.0, read=1.0)
    url = httpx.URL(f"http://127.0.0.1:{dripping_head}/v2/a/blobs/sha256:{'0' * 64}")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="deadline"):
        direct_get(url, {}, ssl.create_default_context(), timeouts, deadline=time.monotonic() + 1.5)
    # Without the deadline the head would go on for ever (a byte every 0.2 s); bounded loosely.
    assert time.monotonic() - started < 30
