"""`sagemaker-runtime` InvokeEndpoint (rest-json): `POST /endpoints/{EndpointName}/invocations`.

The request's path, headers and raw body are mapped to the model's members (data-driven from
botocore's `sagemaker-runtime` model), validated (errors are `ValidationError`, e.g. a body over
6 MiB), and handed to the runtime handler as an `InvokeRequest`. Without a handler every endpoint
is unknown: `ValidationError` "Endpoint X of account N not found.".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.services import RuntimeHandler, call
from forklift.api.validation import operation_model, validate

DRAIN_LIMIT = 64 * 1024 * 1024  # past this, stop reading an oversized body and drop the connection


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class InvokeRequest:
    endpoint_name: str
    body: bytes
    content_type: str | None = None  # None when the caller sent none: pick a default
    accept: str | None = None
    custom_attributes: str | None = None
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component_name: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)  # every member, model names


@dataclass
class InvokeResponse:
    body: bytes | Iterable[bytes] | AsyncIterable[bytes]  # iterables are streamed (chunked)
    content_type: str = "application/json"
    invoked_production_variant: str | None = None
    custom_attributes: str | None = None
    new_session_id: str | None = None
    closed_session_id: str | None = None


def _model():
    op = operation_model("sagemaker-runtime", "InvokeEndpoint")
    assert op is not None
    return op


def max_body() -> int:
    return int(_model().input_shape.members["Body"].metadata["max"])


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, cut at `limit + 1` bytes (enough to fail the length check) but read to the end."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT:
        return b"\0" * (limit + 1)
    kept, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if len(kept) <= limit:
            kept += chunk[: limit + 1 - len(kept)]
        if size > DRAIN_LIMIT:
            break
    return bytes(kept)


async def invoke_endpoint(request: Request, ctx: RequestContext, handler: RuntimeHandler | None) -> Response:
    op = _model()
    params: dict[str, Any] = {}
    for name, member in op.input_shape.members.items():
        location = member.serialization.get("location")
        if location == "uri":
            params[name] = request.path_params[member.serialization["name"]]
        elif location == "header" and member.serialization["name"] in request.headers:
            params[name] = request.headers[member.serialization["name"]]
    params["Body"] = await _read_body(request, max_body())
    params = validate("sagemaker-runtime", "InvokeEndpoint", params, error_code="ValidationError")
    if handler is None:
        raise ApiError.endpoint_not_found(params["EndpointName"], ctx.account)
    known = {f.name for f in dataclasses.fields(InvokeRequest)} - {"endpoint_name", "body", "params"}
    fields = {_snake(name): value for name, value in params.items() if _snake(name) in known}
    invoke = InvokeRequest(endpoint_name=params["EndpointName"], body=params["Body"], params=params, **fields)
    result = await call(handler, invoke, ctx)
    if not isinstance(result, InvokeResponse):
        raise TypeError(f"the runtime handler returned {type(result).__name__}, not InvokeResponse")
    headers = {"Content-Type": result.content_type}
    for name, member in op.output_shape.members.items():
        value = getattr(result, _snake(name), None)
        if member.serialization.get("location") == "header" and value is not None and name != "ContentType":
            headers[member.serialization["name"]] = value
    if isinstance(result.body, (bytes, bytearray)):
        return Response(bytes(result.body), 200, headers=headers)
    return StreamingResponse(result.body, 200, headers=headers)
