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
    short_reason,
    transport_kind,
)
from forklift.registry.retry import RetryPolicy
from forklift.registry.timeouts import MIN_BLOB_RATE, Timeouts, WaitedTooLong


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    outer.__cause__ = inner  # as `raise outer from inner` leaves it
    return outer


def test_a_resolver_that_cannot_answer_now_is_retried_and_an_unknown_name_is_not():
    again = _raised_from(httpx.ConnectError("[Errno -3] Temporary failure in name resolution"),
                         socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))
    unknown = _raised_from(httpx.ConnectError("[Errno -2] Name or service not known"),
                           socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert RetryPolicy().attempts().retries_error(again)
    assert RetryPolicy().attempts().retries_error(httpx.ConnectError("[Errno -3] Temporary failure in name resolution"))
    assert not RetryPolicy().attempts().retries_error(unknown)


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
    temporary = "Temporary failure" in str(exc)  # EAI_AGAIN: the resolver, not the name
    assert RetryPolicy().attempts().retries_error(exc) is (kind not in ("tls", "dns") or temporary)
    error = error_for_transport(exc, registry="r.example", certs_hint="/etc/certs.d/r.example/ca.crt")
    assert isinstance(error, TLSError if kind == "tls" else RegistryUnreachable)


class Clock:
    """Time as the test says it is: the budget is about elapsed time, not about how fast this machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_policy_retries_listed_statuses_until_the_budget_is_spent():
    clock = Clock()
    attempts = RetryPolicy(budget=60, clock=clock).attempts()
    assert not attempts.retries_status(404)
    assert attempts.retries_status(503)  # the first failure starts the budget's clock
    attempts.delay()
    clock.now += 59
    assert attempts.retries_status(429) and attempts.retries_error(ConnectionResetError())
    assert attempts.left() == 1.0
    clock.now += 1
    assert not attempts.retries_status(503)
    assert not attempts.retries_error(ConnectionRefusedError())
    assert attempts.given_up() == "; retried for 60 s (registry_retry_seconds) without success"


def test_a_failure_another_client_judged_transient_shares_the_same_budget():
    clock = Clock()
    attempts = RetryPolicy(budget=10, clock=clock).attempts()
    assert attempts.retries_transient()  # the S3 backend's botocore timeouts and cut connections
    attempts.delay()
    clock.now += 10
    assert not attempts.retries_transient()
    assert attempts.given_up() == "; retried for 10 s (registry_retry_seconds) without success"


def test_progress_gives_a_later_failure_the_whole_budget_again():
    clock = Clock()
    attempts = RetryPolicy(budget=10, clock=clock).attempts()
    assert attempts.retries_error(TimeoutError())
    attempts.delay()
    clock.now += 9
    attempts.progressed()  # bytes arrived
    clock.now += 5
    assert attempts.retries_error(TimeoutError()) and attempts.left() == 10.0
    assert attempts.given_up() == ""


def test_a_count_limit_still_applies_within_the_budget():
    attempts = RetryPolicy(budget=60, max_retries=1, clock=Clock()).attempts()
    assert attempts.retries_status(503)
    attempts.delay()
    assert not attempts.retries_status(503)
    assert attempts.given_up() == "; retried 1 time without success"


def test_retry_after_is_honoured_but_never_past_the_budget():
    clock = Clock()
    attempts = RetryPolicy(budget=60, clock=clock).attempts()

    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert attempts.retries_status(500)
    assert attempts.delay(answer("2")) == 2.0
    assert attempts.delay(answer("300")) == 60.0  # what is left of the budget, not the server's 300
    clock.now += 50
    assert attempts.delay(answer("60")) == 10.0
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    assert 0.0 < attempts.delay(answer(soon)) <= 10.0
    fresh = RetryPolicy(budget=60, clock=clock).attempts()
    assert fresh.retries_status(503)
    assert 0.0 <= fresh.delay(answer("soon")) <= fresh.policy.base  # unreadable: backoff
    fresh.count = 40
    assert 0.0 <= fresh.delay() <= fresh.policy.cap


def test_a_timeout_names_the_wait_that_ran_out_and_its_setting():
    stalled = error_for_transport(WaitedTooLong("read", 30), registry="r.example", certs_hint="-",
                                  what="blob sha256:ab")
    assert str(stalled) == ("the download of blob sha256:ab from r.example stalled: no data for 30 s "
                            "(registry_read_timeout_seconds)")
    silent = error_for_transport(WaitedTooLong("first_byte", 2.5), registry="r.example", certs_hint="-",
                                 what="manifest demo:1")
    assert "sent no answer for manifest demo:1 within 2.5 s (registry_first_byte_timeout_seconds)" in str(silent)
    assert "registry_connect_timeout_seconds" in str(
        error_for_transport(WaitedTooLong("connect", 10), registry="r.example", certs_hint="-"))
    assert short_reason(_raised_from(httpx.ConnectError("x"), ConnectionRefusedError(111, "refused"))) == \
        "connection refused"


def test_a_retry_after_of_zero_or_gone_by_still_waits_the_backoff():
    """Taken at its word, `Retry-After: 0` (or negative, or a date past) retries in a tight loop."""
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    for value in ("0", "-5", past):
        policy = RetryPolicy(budget=60, base=1.0, cap=1.0)
        policy_floor = [min(policy.cap, policy.base * 2 ** n) for n in range(3)]
        attempts = policy.attempts()
        waits = []
        for _ in range(3):
            assert attempts.retries_status(503)
            waits.append(attempts.delay(httpx.Response(503, headers={"Retry-After": value})))
        # Full jitter can draw a short wait, but three of them are not all zero, and none exceeds the backoff's.
        assert sum(waits) > 0, (value, waits)
        assert all(0.0 <= w <= top for w, top in zip(waits, policy_floor, strict=True)), (value, waits)


def test_an_uploads_head_deadline_grows_with_the_body_it_sends():
    """A PUT of a whole layer sends it before the head of the answer can come: its size is allowed for."""
    timeouts = Timeouts(connect=1.0, first_byte=1.0, read=1.0)
    assert timeouts.head_deadline() == 3.0
    assert timeouts.head_deadline(sending=10 * MIN_BLOB_RATE) == 13.0
