"""Every registry failure as a typed exception whose message a user can act on.

Messages never carry a password or token: they are built from the registry host, the repository,
the user name and the registry's own error codes only.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from typing import Literal

import httpx

from forklift.errors import ForkliftError
from forklift.registry.timeouts import KEYS, WaitedTooLong


class RegistryError(ForkliftError):
    """Base class; `registry` is host[:port] as written in image references."""

    def __init__(self, message: str, *, registry: str | None = None):
        super().__init__(message)
        self.registry = registry


class AuthenticationFailed(RegistryError):
    """Wrong credentials (or none where they are required)."""


class AccessDenied(RegistryError):
    """Credentials accepted, but not for this repository or action."""


class NotFound(RegistryError):
    """Repository, tag, manifest or blob does not exist (NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN)."""


class TLSError(RegistryError):
    """The registry's certificate is not trusted."""


class RegistryUnreachable(RegistryError):
    """DNS failure, refused connection, timeout."""


class RegistryStalled(RegistryUnreachable):
    """A registry took a connection and then sent nothing, or stopped sending mid-answer, past its
    timeout and the retry budget."""


class DigestMismatch(RegistryError):
    """Content did not hash to the digest it was asked for or announced."""


class TooManyRequests(RegistryError):
    """Rate limited (429) and retries are exhausted."""


class RegistryServerError(RegistryError):
    """5xx from the registry after retries, or a malformed answer."""


class TokenServerFailed(RegistryServerError):
    """The token server answered an error status; one of RETRY_STATUSES is waited out like the registry's."""

    def __init__(self, message: str, *, registry: str | None = None, response: httpx.Response):
        super().__init__(message, registry=registry)
        self.response = response  # its status and Retry-After: what the retry needs


class UnsupportedManifest(RegistryError):
    """A manifest type forklift does not pull (schema1, unknown media type)."""


class PlatformNotFound(RegistryError):
    """An index holds no manifest for the requested platform."""


def registry_error_codes(response: httpx.Response) -> list[tuple[str, str]]:
    """(code, message) pairs from a distribution-style `{"errors": [...]}` body, if any."""
    try:
        body = json.loads(response.content or b"{}")
    except (ValueError, httpx.ResponseNotRead):
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [(str(e.get("code", "")), str(e.get("message", ""))) for e in errors if isinstance(e, dict)]


def error_for_response(
    response: httpx.Response, *, registry: str, what: str, username: str | None = None
) -> RegistryError:
    """Map a failed registry response to a typed error. `what` names the object, e.g. 'demo/tiny:1.0'."""
    status = response.status_code
    codes = registry_error_codes(response)
    code_names = {code for code, _ in codes}
    detail = "; ".join(f"{code}: {message}" if message else code for code, message in codes)
    suffix = f" ({detail})" if detail else ""
    if status == 401:
        if username:
            return AuthenticationFailed(
                f"authentication to {registry} failed for user {username}: 401{suffix}", registry=registry
            )
        return AuthenticationFailed(
            f"{registry} requires authentication for {what} and no credentials were given: 401{suffix}; "
            "pass --username/--password-stdin or run `forklift login`",
            registry=registry,
        )
    if status == 403 or "DENIED" in code_names:
        who = f" for user {username}" if username else ""
        return AccessDenied(f"access to {what} on {registry} denied{who}: {status}{suffix}", registry=registry)
    if status == 404:
        if "MANIFEST_UNKNOWN" in code_names:
            return NotFound(f"manifest unknown: {what} not found on {registry}{suffix}", registry=registry)
        if "NAME_UNKNOWN" in code_names:
            return NotFound(f"repository unknown: {what} not found on {registry}{suffix}", registry=registry)
        if "BLOB_UNKNOWN" in code_names:
            return NotFound(f"blob unknown: {what} not found on {registry}{suffix}", registry=registry)
        return NotFound(f"{what} not found on {registry}: 404{suffix}", registry=registry)
    if status == 429:
        return TooManyRequests(f"{registry} is rate limiting requests for {what}: 429{suffix}", registry=registry)
    return RegistryServerError(f"{registry} answered {status} for {what}{suffix}", registry=registry)


# -- failures to get an answer at all ------------------------------------------------------------
TransportKind = Literal["tls", "dns", "timeout", "connection"]
_TLS_TEXT = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")
_TEMPORARY_DNS_TEXT = "Temporary failure in name resolution"  # EAI_AGAIN, as httpcore words it
_DNS_TEXT = ("Name or service not known", "nodename nor servname", _TEMPORARY_DNS_TEXT,
             "No address associated with hostname")


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from (httpx wraps httpcore's, which wraps ssl's or socket's)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def transport_kind(exc: BaseException) -> TransportKind:
    """Classify a failure to reach a registry or to read its answer, from httpx, http.client, ssl or socket.

    'tls': the certificate is not trusted; 'dns': the host name does not resolve; 'timeout';
    'connection': anything else (refused, reset, dropped mid-body).
    """
    chain = _chain(exc)
    texts = [str(e) for e in chain]
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or any(
            marker in text for text in texts for marker in _TLS_TEXT):
        return "tls"
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
            marker in text for text in texts for marker in _DNS_TEXT):
        return "dns"
    if any(isinstance(e, (httpx.TimeoutException, TimeoutError)) for e in chain):
        return "timeout"
    return "connection"


def short_reason(exc: BaseException) -> str:
    """A few words for why a request failed, for a retry notice: 'connection refused', 'no data for 30 s (…)'."""
    chain = _chain(exc)
    waited = next((e for e in chain if isinstance(e, WaitedTooLong)), None)
    if waited is not None:
        return str(waited)
    if any(isinstance(e, ConnectionRefusedError) or "Connection refused" in str(e) for e in chain):
        return "connection refused"
    if any(isinstance(e, ConnectionResetError) or "Connection reset" in str(e) for e in chain):
        return "connection reset"
    if any(isinstance(e, (http.client.IncompleteRead, httpx.RemoteProtocolError)) for e in chain):
        return "connection cut mid-answer"
    if transport_kind(exc) == "timeout":
        return "timed out"
    return str(exc) or type(exc).__name__


def is_retryable_transport_error(exc: BaseException) -> bool:
    """Connection drops and timeouts are worth retrying; TLS verification and DNS failures are not,
    except a resolver that could not answer just now (EAI_AGAIN), which says nothing about the name."""
    kind = transport_kind(exc)
    return kind != "tls" and (kind != "dns" or _temporary_dns(exc))


def _temporary_dns(exc: BaseException) -> bool:
    return any((isinstance(e, socket.gaierror) and e.errno == socket.EAI_AGAIN)
               or _TEMPORARY_DNS_TEXT in str(e) for e in _chain(exc))


def _waited(exc: BaseException, registry: str, what: str) -> RegistryError | None:
    waited = next((e for e in _chain(exc) if isinstance(e, WaitedTooLong)), None)
    if waited is None:
        return None
    key = KEYS[waited.phase]
    if waited.phase == "connect":
        return RegistryUnreachable(f"could not connect to registry {registry} within {waited.seconds:g} s ({key})",
                                   registry=registry)
    if waited.phase == "first_byte":
        return RegistryStalled(f"{registry} sent no answer for {what} within {waited.seconds:g} s ({key})",
                               registry=registry)
    return RegistryStalled(f"the download of {what} from {registry} stalled: no data for {waited.seconds:g} s "
                           f"({key})", registry=registry)


def error_for_transport(exc: BaseException, *, registry: str, certs_hint: str,
                        what: str = "a request") -> RegistryError:
    """Map a connection-level failure (TLS, DNS, refused, timeout) to a typed error; `what` names
    what was asked for, e.g. 'blob sha256:…'."""
    text = str(exc) or type(exc).__name__
    kind = transport_kind(exc)
    if kind == "timeout" and (waited := _waited(exc, registry, what)) is not None:
        return waited
    if kind == "tls":
        return TLSError(
            f"TLS certificate of {registry} is not trusted (x509: certificate signed by unknown authority: "
            f"{text}); put the registry's CA certificate in {certs_hint} or list {registry} under "
            "insecure_registries in config.toml",
            registry=registry,
        )
    if kind == "dns":
        return RegistryUnreachable(f"cannot resolve registry host {registry}: {text}", registry=registry)
    if kind == "timeout":
        return RegistryUnreachable(f"timed out talking to {registry}: {text}", registry=registry)
    return RegistryUnreachable(f"cannot connect to registry {registry}: {short_reason(exc)}", registry=registry)
