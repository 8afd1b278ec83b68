"""The one retry policy and the one classifier of connection-level failures."""

from __future__ import annotations

import http.client
import socket
import ssl
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from forklift.registry.errors import (
    RegistryUnreachable,
    TLSError,
    error_for_transport,
    transport_kind,
)
from forklift.registry.retry import RetryPolicy


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    outer.__cause__ = inner  # as `raise outer from inner` leaves it
    return outer


@pytest.mark.parametrize(("exc", "kind"), [
    (_raised_from(httpx.ConnectError("handshake failed"), ssl.SSLCertVerificationError(1, "unknown ca")), "tls"),
    (ssl.SSLCertVerificationError(1, "self-signed certificate"), "tls"),
    (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tls"),
    (_raised_from(httpx.ConnectError("lookup failed"), socket.gaierror(-2, "Name or service not known")), "dns"),
    (socket.gaierror(-3, "Temporary failure in name resolution"), "dns"),
    (httpx.ReadTimeout("timed out"), "timeout"),
    (TimeoutError("timed out"), "timeout"),
    (httpx.ConnectError("[Errno 111] Connection refused"), "connection"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection"),
    (http.client.IncompleteRead(b"", 10), "connection"),
])
def test_transport_failures_are_classified_once_for_httpx_http_client_and_sockets(exc, kind):
    assert transport_kind(exc) == kind
    assert RetryPolicy().retries_error(exc, 0) is (kind not in ("tls", "dns"))
    error = error_for_transport(exc, registry="r.example", certs_hint="/etc/certs.d/r.example/ca.crt")
    assert isinstance(error, TLSError if kind == "tls" else RegistryUnreachable)


def test_policy_retries_listed_statuses_until_attempts_run_out():
    policy = RetryPolicy(max_retries=2)
    assert policy.retries_status(503, 0) and policy.retries_status(429, 1)
    assert not policy.retries_status(503, 2)
    assert not policy.retries_status(404, 0)
    assert not policy.retries_error(ConnectionResetError(), 2)


def test_retry_after_is_honoured_and_bounded():
    policy = RetryPolicy(max_retry_after=5.0)

    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert policy.delay(0, answer("2")) == 2.0
    assert policy.delay(0, answer("3600")) == 5.0
    assert policy.delay(0, answer("-1")) == 0.0
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    assert 0.0 < policy.delay(0, answer(soon)) <= 3.0
    assert 0.0 <= policy.delay(3, answer("soon")) <= policy.base * 8  # unreadable: backoff
    assert 0.0 <= policy.delay(20) <= policy.cap
