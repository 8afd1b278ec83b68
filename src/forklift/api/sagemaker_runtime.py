"""`sagemaker-runtime` InvokeEndpoint (rest-json): `POST /endpoints/{EndpointName}/invocations`.

This is the data plane's hot path, so it is a plain ASGI handler: no router, middleware or
`Request` object between uvicorn and the runtime handler. The request's path, headers and raw body
are mapped to the model's members (the table is built once from botocore's `sagemaker-runtime`
model), validated (errors are `ValidationError`, e.g. a body over 6 MiB), authorized against the signing
key's policy (`sagemaker:InvokeEndpoint` on the endpoint's ARN, `api.authz`), and handed to the runtime
handler as an `InvokeRequest`. Without a handler every endpoint is unknown: `ValidationError`
"Endpoint X of account N not found.".
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from forklift.api.authz import authorize
from forklift.api.context import build_context, new_request_id
from forklift.api.errors import ApiError
from forklift.api.invocation import InvokeRequest, InvokeResponse, RuntimeHandler
from forklift.api.protocol import REQUEST_ID_HEADER, rest_error
from forklift.api.services import Authenticator, call
from forklift.api.validation import flat_check, operation_model, validate

log = logging.getLogger(__name__)
DRAIN_LIMIT = 64 * 1024 * 1024  # past this, stop reading an oversized body and drop the connection
_PATH = re.compile(r"/endpoints/([^/]+)/invocations")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class _Wire:
    """Where each member of the operation travels, from botocore's model."""

    request_headers: dict[bytes, str]  # lower-cased header name -> member name
    request_fields: dict[str, str]  # member name -> InvokeRequest field, for the members it has
    response_headers: list[tuple[str, bytes]]  # InvokeResponse field -> header name (not Content-Type)
    max_body: int
    accepts: Callable[[Mapping[str, Any]], bool]  # True: valid as it is


@functools.cache
def _wire() -> _Wire:
    op = operation_model("sagemaker-runtime", "InvokeEndpoint")
    assert op is not None
    known = {f.name for f in dataclasses.fields(InvokeRequest)} - {"endpoint_name", "body", "params"}
    members = op.input_shape.members
    return _Wire(
        request_headers={m.serialization["name"].lower().encode(): name for name, m in members.items()
                         if m.serialization.get("location") == "header"},
        request_fields={name: _snake(name) for name in members if _snake(name) in known},
        response_headers=[(_snake(name), m.serialization["name"].encode())
                          for name, m in op.output_shape.members.items()
                          if m.serialization.get("location") == "header" and name != "ContentType"],
        max_body=int(members["Body"].metadata["max"]),
        accepts=flat_check("sagemaker-runtime", "InvokeEndpoint"))


def max_body() -> int:
    return _wire().max_body


def endpoint_in_path(path: str) -> str | None:
    """The endpoint name when `path` is an InvokeEndpoint path, else None."""
    match = _PATH.fullmatch(path)
    return match.group(1) if match else None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body, cut at `limit + 1` bytes (enough to fail the length check) but read to the end."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > DRAIN_LIMIT:
            return b"\0" * (limit + 1)
    first = await receive()
    if first["type"] == "http.disconnect":
        raise ClientDisconnect
    if not first.get("more_body"):
        return first.get("body", b"")
    kept, size, message = bytearray(), 0, first
    while True:
        chunk = message.get("body", b"")
        size += len(chunk)
        if len(kept) <= limit:
            kept += chunk[: limit + 1 - len(kept)]
        if size > DRAIN_LIMIT or not message.get("more_body"):
            return bytes(kept)
        message = await receive()
        if message["type"] == "http.disconnect":  # never handle a body cut short
            raise ClientDisconnect


async def invoke_endpoint(endpoint: str, scope: Scope, receive: Receive, send: Send, handler: RuntimeHandler | None,
                          region: str, account: str, authenticate: Authenticator | None = None) -> None:
    """Answer one InvokeEndpoint (an ASGI app's body); every failure before the answer starts is a
    rest-json error. One that breaks a streamed answer midway reaches uvicorn, which drops the
    connection: the caller sees a truncated body, not a wrong one."""
    request_id = new_request_id()
    try:
        headers, body = await _invoke(endpoint, scope, receive, handler, request_id, region, account, authenticate)
    except ApiError as error:
        if error.status >= 500:
            log.warning("request %s: %s %s", request_id, error.code, error.message)
        await _send_error(error, request_id, scope, receive, send)
        return
    except ClientDisconnect:
        log.debug("request %s: the client went away before its body arrived", request_id)
        return
    except Exception:
        log.exception("request %s failed", request_id)
        await _send_error(ApiError.internal(), request_id, scope, receive, send)
        return
    if isinstance(body, (bytes, bytearray)):
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": bytes(body)})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if isinstance(body, AsyncIterable):
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    else:
        for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _send_error(error: ApiError, request_id: str, scope: Scope, receive: Receive, send: Send) -> None:
    response = rest_error(error)
    response.headers[REQUEST_ID_HEADER] = request_id
    await response(scope, receive, send)


async def _invoke(endpoint: str, scope: Scope, receive: Receive, handler: RuntimeHandler | None, request_id: str,
                  region: str, account: str, authenticate: Authenticator | None
                  ) -> tuple[list[tuple[bytes, bytes]], Any]:
    """The answer's headers and body (bytes or an iterable of chunks)."""
    wire = _wire()
    headers: dict[str, str] = {}
    params: dict[str, Any] = {"EndpointName": endpoint}
    for name, value in scope["headers"]:
        member = wire.request_headers.get(name)
        if member is not None:
            params[member] = value.decode("latin-1")
        headers[name.decode("latin-1")] = value.decode("latin-1")
    params["Body"] = await _read_body(scope, receive, wire.max_body)
    principal = authenticate(scope, params["Body"]) if authenticate is not None else None
    if not wire.accepts(params):
        params = validate("sagemaker-runtime", "InvokeEndpoint", params, error_code="ValidationError")
    query = dict(parse_qsl(scope["query_string"].decode("latin-1"))) if scope.get("query_string") else {}
    ctx = build_context(request_id, headers, query, region, account, "InvokeEndpoint", principal)
    authorize(ctx, "sagemaker-runtime", "InvokeEndpoint", params)
    if handler is None:
        raise ApiError.endpoint_not_found(params["EndpointName"], ctx.account)
    fields = {wire.request_fields[name]: value for name, value in params.items() if name in wire.request_fields}
    invoke = InvokeRequest(endpoint_name=params["EndpointName"], body=params["Body"], params=params, **fields)
    result = await call(handler, invoke, ctx)
    if not isinstance(result, InvokeResponse):
        raise TypeError(f"the runtime handler returned {type(result).__name__}, not InvokeResponse")
    answer = [(b"content-type", result.content_type.encode("latin-1")),
              (REQUEST_ID_HEADER.encode(), request_id.encode())]
    for attribute, header in wire.response_headers:
        value = getattr(result, attribute, None)
        if value is not None:
            answer.append((header, value.encode("latin-1")))
    return answer, result.body
