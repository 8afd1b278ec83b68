"""awsJson1.1 dispatch: `POST /` with `X-Amz-Target: <Prefix>.<Operation>`.

One target prefix per service (`SageMaker`, `Logs_20140328`), each with its botocore model, the
error code its constraint violations use, and its operation → handler registry. Order of checks:
a target outside the model → UnknownOperationException; unparseable body → SerializationException;
constraint violations → the service's validation code (for every modelled operation, so a client
learns about a bad request even where forklift has no behaviour yet); what the signing key may not do →
AccessDeniedException (`api.authz`); no handler registered → UnknownOperationException; then the handler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from forklift.api.admission import RequestGate
from forklift.api.authz import authorize
from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.jsondepth import MAX_DEPTH, nests_deeper
from forklift.api.protocol import json_response
from forklift.api.services import Authenticator, Handler, call
from forklift.api.sigv4 import Principal
from forklift.api.validation import operation_model, validate

MAX_BODY = 16 * 1024 * 1024  # far above any SageMaker request; a bound on what one request may buffer


@dataclass(frozen=True)
class JsonService:
    model: str  # botocore service name
    validation_code: str  # "ValidationException" (SageMaker), "InvalidParameterException" (Logs)
    handlers: Mapping[str, Handler]


def resolve(target: str, services: Mapping[str, JsonService]) -> tuple[JsonService, str]:
    """The service and operation an `X-Amz-Target` names, if botocore's model has that operation."""
    prefix, _, operation = target.partition(".")
    service = services.get(prefix)
    if service is None or operation_model(service.model, operation) is None:
        raise ApiError.unknown_operation(operation or target or "(no X-Amz-Target header)")
    return service, operation


def handler_for(service: JsonService, operation: str) -> Handler:
    handler = service.handlers.get(operation)
    if handler is None:
        raise ApiError.unknown_operation(operation)
    return handler


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refused (413) past `limit` bytes instead of buffering without bound."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError("RequestEntityTooLargeException", f"The request body exceeds {limit} bytes.", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError("RequestEntityTooLargeException", f"The request body exceeds {limit} bytes.", 413)
    return bytes(body)


_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(body: bytes) -> Any:
    """The JSON document of a request; an empty body is `{}` (botocore sends `{}` for no input).

    A body nesting deeper than `MAX_DEPTH` is refused before it is parsed: the parser, the validator
    and the handlers all recurse into it.
    """
    if not body.strip():
        return {}
    if nests_deeper(body):
        raise ApiError.serialization(f"The request body nests deeper than {MAX_DEPTH} levels.")
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        if _ESCAPED_SURROGATE.search(body):
            # `\ud800` alone (no low half after it) parses to a str that is no text: every later step that
            # encodes it (RE2's pattern checks, SQLite, the log) would fail. Pairs, as clients escape
            # emoji, parse to one character and encode fine.
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except UnicodeEncodeError:
        raise ApiError.serialization("The request body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                                     "which is no character; send the text as UTF-8 or as a surrogate pair.") from None
    except RecursionError:
        raise ApiError.serialization(f"The request body nests deeper than {MAX_DEPTH} levels.") from None
    except UnicodeDecodeError:
        raise ApiError.serialization("The request body is not valid UTF-8.") from None
    except ValueError as exc:
        raise ApiError.serialization(f"The request body is not valid JSON: {exc}") from None


async def dispatch(request: Request, services: Mapping[str, JsonService],
                   context: Callable[[Request, str, Principal | None], RequestContext],
                   authenticate: Authenticator | None = None, gate: RequestGate | None = None) -> Response:
    """Authenticate, resolve, parse, validate, authorize, run the handler; errors are raised as ApiError
    for the caller to render. With a `gate`, all but the reading of the body holds a place in it (a
    slow client's body takes none)."""
    body = await read_body(request)
    # Authenticated before a place is taken: a throttled call is still audited under its signer, and
    # a caller's share of the places is counted by who it is.
    principal = authenticate(request.scope, body) if authenticate is not None else None
    if gate is None:
        return await _answer(request, services, context, principal, body)
    async with gate.admitted(caller_key(request, principal)):
        return await _answer(request, services, context, principal, body)


def caller_key(request: Request, principal: Principal | None) -> str:
    """Who a request counts against in the admission gate: its signing key, else its address."""
    if principal is not None:
        return f"key:{principal.access_key_id}"
    return f"address:{request.client.host if request.client else ''}"


async def _answer(request: Request, services: Mapping[str, JsonService],
                  context: Callable[[Request, str, Principal | None], RequestContext],
                  principal: Principal | None, body: bytes) -> Response:
    service, operation = resolve(request.headers.get("x-amz-target", ""), services)
    params = validate(service.model, operation, parse_body(body), error_code=service.validation_code)
    ctx = context(request, operation, principal)
    authorize(ctx, service.model, operation, params)
    result = await call(handler_for(service, operation), params, ctx)
    if result is not None and not isinstance(result, dict):
        raise TypeError(f"the handler of {operation} returned {type(result).__name__}, not a dict")
    return json_response(result)
