"""The CLI's JSON-protocol client against peers that answer badly: every answer ends in ApiError with
a readable message (the command prints one line), never a traceback or a silently cut body.

The peers are raw sockets on loopback sending exactly the bytes under test."""

from __future__ import annotations

import socket
import threading

import pytest

from forklift.jsonclient import ApiError, JsonClient, Unreachable, invoke_endpoint


def peer(answer: bytes) -> str:
    """A one-shot server on 127.0.0.1 that reads a request and sends `answer`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run():
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(5)
            connection.recv(65536)
            connection.sendall(answer)
            connection.shutdown(socket.SHUT_WR)
            try:  # read what is left of the request, so closing sends FIN, not a reset
                while connection.recv(65536):
                    pass
            except OSError:
                pass
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("answer,code,words", [
    (b"SSH-2.0-OpenSSH_9.2\r\n", "Unreachable", "not HTTP"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial", "IncompleteResponse", "short of its announced"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", "InvalidResponse", "not a JSON object"),
    (b"HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\n<html", "InvalidResponse", "without JSON"),
    (b"HTTP/1.1 400 Bad\r\nContent-Length: 55\r\n\r\n" + b'{"__type": "ValidationException", "message": "no such"}',
     "ValidationException", "no such"),
])
def test_bad_answers_become_one_readable_error(answer: bytes, code: str, words: str):
    with pytest.raises(ApiError) as info:
        JsonClient("sagemaker", peer(answer)).list_training_jobs()
    assert info.value.code == code and words in str(info.value)
    assert "OpenSSH" not in str(info.value)  # what the peer sent is not repeated


def test_invoke_refuses_a_cut_body():
    with pytest.raises(ApiError) as info:
        invoke_endpoint(peer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial"), "e", b"x", {})
    assert info.value.code == "IncompleteResponse"


def test_times_are_datetimes_unless_no_calendar_holds_them():
    body = b'{"CreationTime": 1700000000.5, "LastModifiedTime": 1e300, "Name": "x"}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    result = JsonClient("sagemaker", peer(answer)).describe_training_job(TrainingJobName="x")
    assert result["CreationTime"].year == 2023 and result["LastModifiedTime"] == 1e300


def test_unreachable_names_the_server_without_its_password():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(Unreachable) as info:
        JsonClient("sagemaker", f"http://user:hunter2-secret@127.0.0.1:{port}").list_training_jobs()
    assert f"cannot reach the forklift server at http://127.0.0.1:{port}" in str(info.value)
    assert "hunter2" not in str(info.value)
    with pytest.raises(Unreachable):
        JsonClient("sagemaker", "ftp://127.0.0.1:21")
