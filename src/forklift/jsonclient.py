"""The AWS JSON protocol over `http.client`, for the commands people type.

boto3 takes about 0.4 s to import and build a client; the CLI's calls to `forklift serve` are plain
awsJson1.1 requests (`POST /`, `X-Amz-Target: SageMaker.DescribeTrainingJob`), so the commands make
them with the standard library and answer in tens of milliseconds. The calls look like boto3's
(`client.describe_training_job(TrainingJobName=...)`, `client.pages("ListTrainingJobs", ...)`), and a
refused call raises `ApiError` with the server's code and message. SageMaker timestamps (epoch
seconds in members named `...Time`) come back as datetimes, as boto3 returns them.

User code and the SDK keep using boto3; this is only the CLI's transport. Requests are signed
(SigV4) when AWS credentials are configured, as a keyed server requires (see `forklift.signing`).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from forklift.errors import ForkliftError
from forklift.servertls import CA_BUNDLE_VARIABLE, client_context
from forklift.signing import Signer, signer

SERVICES = {"sagemaker": "SageMaker", "logs": "Logs_20140328"}


class _FromEnvironment:
    """The default of a client's `sign`: sign with the AWS credentials configured, if any."""


FROM_ENVIRONMENT = _FromEnvironment()


def _signer_for(service: str, sign: Signer | _FromEnvironment | None) -> Signer | None:
    if isinstance(sign, _FromEnvironment):
        return signer(service, os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    return sign
CONTENT_TYPE = "application/x-amz-json-1.1"
TIMEOUT = 120.0
MAX_RESPONSE = 64 * 1024 * 1024


class ApiError(ForkliftError):
    """The server refused a call: its HTTP status, AWS error code and message."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{code}: {message}")


class Unreachable(ApiError):
    def __init__(self, url: str, reason: str):
        super().__init__(0, "Unreachable", f"cannot reach the forklift server at {_shown(url)}: {reason}")


def _shown(url: str) -> str:
    """`url` without any user:password@ it was given with."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")).geturl()


def _endpoint(url: str) -> SplitResult:
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unreachable(url, "not an http:// or https:// URL")
    return parts


def _connection(parts: SplitResult, timeout: float) -> http.client.HTTPConnection:
    """A connection (not yet opened) to the server `parts` names, TLS verified for https."""
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout,
                                           context=client_context())  # AWS_CA_BUNDLE, as boto3
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)


def _read_whole(response: http.client.HTTPResponse, what: str) -> bytes:
    """The answer's body, refused when it is larger than MAX_RESPONSE or shorter than announced."""
    try:
        data = response.read(MAX_RESPONSE + 1)
    except http.client.IncompleteRead as exc:
        raise ApiError(response.status, "IncompleteResponse", f"{what}: the answer ended after {len(exc.partial)} "
                       "bytes, before its announced length") from None
    if len(data) > MAX_RESPONSE:
        raise ApiError(response.status, "ResponseTooLarge", f"{what}: the answer is over {MAX_RESPONSE} bytes")
    if response.length:  # Content-Length announced more than came
        raise ApiError(response.status, "IncompleteResponse",
                       f"{what}: the answer ended {response.length} bytes short of its announced length")
    return data


def _failure(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"its TLS certificate is not trusted ({exc.verify_message}); set {CA_BUNDLE_VARIABLE} (or "
                "ca_bundle in config.toml) to the CA certificate that signed it")
    if isinstance(exc, http.client.HTTPException):  # its text is whatever the peer sent: not repeated
        return f"the answer is not HTTP a forklift server would send ({type(exc).__name__})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _error_document(data: bytes) -> dict:
    try:
        document = json.loads(data)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _operation(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _datetime(value: float) -> datetime | float:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):  # not a time any calendar holds: kept as the number it was
        return value


def _datetimes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (_datetime(v) if k.endswith("Time") and isinstance(v, (int, float)) and not isinstance(v, bool)
                    else _datetimes(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_datetimes(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON: {type(value).__name__}")


class JsonClient:
    """One service (`sagemaker` or `logs`) of the server at `url`, over one kept-alive connection."""

    def __init__(self, service: str, url: str, *, headers: dict[str, str] | None = None, timeout: float = TIMEOUT,
                 sign: Signer | _FromEnvironment | None = FROM_ENVIRONMENT):
        self.target_prefix = SERVICES[service]
        self._sign = _signer_for(service, sign)
        self.convert_times = service == "sagemaker"  # Logs' times are epoch milliseconds, kept as numbers
        self.url = url.rstrip("/")
        self._parts = _endpoint(self.url)
        self._timeout = timeout
        self._headers = dict(headers or {})
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> tuple[http.client.HTTPConnection, bool]:
        """The connection, and whether it was used before (and so may have been closed by the server)."""
        if self._connection is not None:
            return self._connection, True
        self._connection = _connection(self._parts, self._timeout)
        return self._connection, False

    def call(self, operation: str, **params: Any) -> dict:
        body = json.dumps(params, default=_jsonable).encode()
        headers = {**self._headers, "Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{self.target_prefix}.{operation}",
                   "Accept": "application/json"}
        if self._sign is not None:
            url = f"{self._parts.scheme}://{self._parts.netloc}{self._parts.path or '/'}"
            headers = self._sign("POST", url, headers, body)
        while True:
            connection, reused = self._connect()
            try:
                connection.request("POST", self._parts.path or "/", body=body, headers=headers)
                response = connection.getresponse()
                data = _read_whole(response, operation)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                # Only a kept-alive connection the server had closed before this request is retried:
                # the request never reached it. A fresh connection failing is an answer.
                if not reused:
                    raise Unreachable(self.url, str(exc) or type(exc).__name__) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise Unreachable(self.url, _failure(exc)) from None
            except ApiError:
                self.close()
                raise
        try:
            document = json.loads(data) if data else {}
        except ValueError:
            raise ApiError(response.status, "InvalidResponse",
                           f"{operation}: the server answered {response.status} without JSON") from None
        if not isinstance(document, dict):
            raise ApiError(response.status, "InvalidResponse", f"{operation}: the answer is not a JSON object")
        if response.status >= 400:
            code = str(document.get("__type", "") or response.reason).rsplit("#", 1)[-1]
            raise ApiError(response.status, code, str(document.get("message") or document.get("Message") or ""))
        return _datetimes(document) if self.convert_times else document

    def pages(self, operation: str, **params: Any) -> Iterator[dict]:
        """Every page of a listing, following NextToken (SageMaker) or nextToken (Logs)."""
        seen: set[str] = set()
        while True:
            page = self.call(operation, **params)
            yield page
            token = page.get("NextToken") or page.get("nextToken")
            if not token or token in seen:
                return
            seen.add(token)
            params["NextToken" if "NextToken" in page else "nextToken"] = token

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __getattr__(self, name: str):
        if not re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", name):
            raise AttributeError(name)
        operation = _operation(name)
        return lambda **params: self.call(operation, **params)


@dataclass(frozen=True)
class Invocation:
    body: bytes
    content_type: str
    variant: str


def invoke_endpoint(url: str, endpoint: str, body: bytes, headers: dict[str, str],
                    timeout: float = TIMEOUT, sign: Signer | _FromEnvironment | None = FROM_ENVIRONMENT) -> Invocation:
    """sagemaker-runtime's InvokeEndpoint (rest-json: `POST /endpoints/<name>/invocations`); a refused
    call raises ApiError, a container's error `ModelError` with its `OriginalStatusCode`/`OriginalMessage`
    in the message."""
    parts = _endpoint(url)
    path = f"{parts.path}/endpoints/{quote(endpoint, safe='')}/invocations"
    sign = _signer_for("sagemaker", sign)  # boto3 signs sagemaker-runtime with the name "sagemaker"
    if sign is not None:
        headers = sign("POST", f"{parts.scheme}://{parts.netloc}{path}", headers, body)
    response, data = _exchange(url, parts, timeout, "POST", path, body, headers, "InvokeEndpoint")
    return Invocation(data, response.getheader("Content-Type", ""),
                      response.getheader("x-Amzn-Invoked-Production-Variant", ""))


def _exchange(url: str, parts: SplitResult, timeout: float, method: str, target: str, body: bytes | None,
              headers: dict[str, str], what: str) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a connection of its own: the response and its whole body; a refusal (4xx, 5xx)
    raises ApiError, a server out of reach Unreachable."""
    connection = _connection(parts, timeout)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        data = _read_whole(response, what)
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(url, _failure(exc)) from None
    finally:
        connection.close()
    if response.status >= 400:
        raise _rest_failure(response, data)
    return response, data


def _rest_failure(response: http.client.HTTPResponse, data: bytes) -> ApiError:
    """A rest-json error answer (the code in `x-amzn-ErrorType`) as ApiError."""
    document = _error_document(data)
    code = (response.getheader("x-amzn-ErrorType") or str(document.get("__type") or "") or response.reason)
    message = str(document.get("message") or document.get("Message") or "")
    if "OriginalStatusCode" in document:
        message = f"the container answered {document['OriginalStatusCode']}: {document.get('OriginalMessage', '')}"
    return ApiError(response.status, code.split(":")[0], message)


def get_text(url: str, path: str, timeout: float = TIMEOUT,
             sign: Signer | _FromEnvironment | None = FROM_ENVIRONMENT) -> str:
    """The UTF-8 answer to `GET <path>` on the server (one of forklift's own routes, `/_forklift/…`),
    signed as a SageMaker request; a refused call raises ApiError."""
    parts = _endpoint(url)
    target = parts.path + path
    headers: dict[str, str] = {"Accept": "application/yaml, application/json"}
    sign = _signer_for("sagemaker", sign)
    if sign is not None:
        headers = sign("GET", f"{parts.scheme}://{parts.netloc}{target}", headers, b"")
    response, data = _exchange(url, parts, timeout, "GET", target, None, headers, f"GET {path}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(response.status, "InvalidResponse", f"GET {path}: the answer is not UTF-8 text") from None
