"""CloudWatch's three wire protocols, as botocore's `cloudwatch` model lists them, onto one set of
handlers (`api.cloudwatch`):

    JSON 1.0   POST /   X-Amz-Target: GraniteServiceVersion20100801.<Op>   (boto3's choice today)
    CBOR       POST /service/GraniteServiceVersion20100801/operation/<Op>   smithy-protocol: rpc-v2-cbor
    query      POST /   Action=<Op>&Version=2010-08-01 (form-encoded), answered in XML

Each call goes the way the awsJson calls go (`api.awsjson`): body read (at most `MAX_BODY`),
signature checked, a place in the admission gate, members read and validated against botocore's
model (a top-level required member missing is `MissingParameter`, any other violation
`InvalidParameterValue`), authorized as `cloudwatch:<Op>` on `*`, then the handler. Errors carry
`x-amzn-query-error`, which botocore's query-compatible JSON and CBOR parsers read the modelled
code from; the query protocol answers them in `<ErrorResponse>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from botocore.model import OperationModel, Shape
from starlette.requests import Request
from starlette.responses import Response

from forklift.api import cbor
from forklift.api.admission import RequestGate
from forklift.api.authz import authorize
from forklift.api.awsjson import caller_key, parse_body, read_body
from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.protocol import json_error, json_response
from forklift.api.querywire import FORM, form_tree, read_input, xml_answer, xml_error
from forklift.api.services import Authenticator, Handler, call
from forklift.api.sigv4 import Principal
from forklift.api.validation import operation_model, service_model, validate

SERVICE = "cloudwatch"
TARGET = "GraniteServiceVersion20100801"
CBOR_ROUTE = f"/service/{TARGET}/operation/{{operation}}"
VERSION = "2010-08-01"
MAX_BODY = 1024 * 1024  # CloudWatch's own limit on a request
MAX_FIELDS = 20_000  # form fields of a query request: 500 queries with a few dimensions each fit
JSON_10 = "application/x-amz-json-1.0"
Context = Callable[[Request, str, Principal | None], RequestContext]


def claims(request: Request) -> bool:
    """Whether a `POST /` is CloudWatch's: its JSON target, or a query form (no other service here speaks it)."""
    target = request.headers.get("x-amz-target")
    if target is not None:
        return target.startswith(TARGET + ".")
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM


def _with_query_code(error: ApiError) -> ApiError:
    if "x-amzn-query-error" not in error.headers and error.status < 500:
        error.headers["x-amzn-query-error"] = f"{error.code};Sender"
    return error


def _typed(shape: Shape | None, value: Any) -> Any:
    """`value` with the timestamps of `shape` as aware datetimes (the handlers give epoch seconds)."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {name: _typed(shape.members.get(name), v) for name, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_typed(shape.member, v) for v in value]
    if kind == "timestamp" and isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC)
    return value


class CloudWatchWire:
    def __init__(self, handlers: Mapping[str, Handler], context: Context, authenticate: Authenticator | None,
                 gate: RequestGate | None) -> None:
        self.handlers, self.context, self.authenticate, self.gate = handlers, context, authenticate, gate

    # -- the three protocols ------------------------------------------------------------------
    async def json(self, request: Request) -> Response:
        operation = request.headers.get("x-amz-target", "").partition(".")[2]
        model, result = await self._serve(request, lambda body: (operation, parse_body(body)))
        return json_response(result, media_type=JSON_10)

    async def rpc_v2_cbor(self, request: Request) -> Response:
        operation = request.path_params["operation"]

        def decoded(body: bytes) -> tuple[str, Any]:
            try:
                return operation, cbor.decode(body)
            except cbor.CborError as exc:
                raise ApiError.serialization(f"The request body is not valid CBOR: {exc}") from None

        model, result = await self._serve(request, decoded)
        return Response(cbor.encode(_typed(model.output_shape, result or {})), 200,
                        headers={"smithy-protocol": "rpc-v2-cbor"}, media_type="application/cbor")

    async def query(self, request: Request) -> Response:
        def decoded(body: bytes) -> tuple[str, Any]:
            try:
                pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
            except (UnicodeDecodeError, ValueError) as exc:
                raise ApiError.serialization(f"The request body is not a form CloudWatch can read: {exc}") from None
            tree = form_tree(pairs)
            action, version = tree.pop("Action", None), tree.pop("Version", None)
            if not isinstance(action, str) or not action:
                raise _with_query_code(ApiError("MissingAction", "The request names no Action.", 400))
            if version != VERSION:
                raise _with_query_code(ApiError("InvalidParameterValue", f"Version {version} is not CloudWatch's "
                                                f"API version; send Version={VERSION}.", 400))
            op = operation_model(SERVICE, action)
            if op is None:
                raise _with_query_code(ApiError("InvalidAction", f"The action {action} is not valid for this "
                                                "web service.", 400))
            return action, read_input(op, tree)

        model, result = await self._serve(request, decoded)
        return Response(xml_answer(model, result, request.state.request_id, _namespace()), 200,
                         media_type="text/xml")

    # -- their errors ---------------------------------------------------------------------------
    @staticmethod
    def json_error(error: ApiError) -> Response:
        return json_error(_with_query_code(error))

    @staticmethod
    def cbor_error(error: ApiError) -> Response:
        error = _with_query_code(error)
        return Response(cbor.encode({"__type": error.code, "message": error.message}), error.status,
                        headers={"smithy-protocol": "rpc-v2-cbor", "x-amzn-ErrorType": error.code, **error.headers},
                        media_type="application/cbor")

    @staticmethod
    def query_error(request_id: str) -> Callable[[ApiError], Response]:
        def render(error: ApiError) -> Response:
            return Response(xml_error(error, request_id, _namespace()), error.status, media_type="text/xml")
        return render

    # -- one call -------------------------------------------------------------------------------
    async def _serve(self, request: Request, decode: Callable[[bytes], tuple[str, Any]]
                     ) -> tuple[OperationModel, dict | None]:
        body = await read_body(request, MAX_BODY)
        principal = self.authenticate(request.scope, body) if self.authenticate is not None else None
        if self.gate is None:
            return await self._answer(request, decode, body, principal)
        async with self.gate.admitted(caller_key(request, principal)):
            return await self._answer(request, decode, body, principal)

    async def _answer(self, request: Request, decode: Callable[[bytes], tuple[str, Any]], body: bytes,
                      principal: Principal | None) -> tuple[OperationModel, dict | None]:
        operation, raw = decode(body)
        model = operation_model(SERVICE, operation)
        if model is None:
            raise ApiError.unknown_operation(operation or "(no operation)")
        if not isinstance(raw, dict):
            raise ApiError.serialization("The request body must be a structure.")
        shape = model.input_shape
        for member in (shape.required_members if shape is not None else []):
            if raw.get(member) is None:
                raise ApiError("MissingParameter", f"The parameter {member} is required.", 400)
        params = validate(SERVICE, operation, raw, error_code="InvalidParameterValue")
        ctx = self.context(request, operation, principal)
        authorize(ctx, SERVICE, operation, params)
        handler = self.handlers.get(operation)
        if handler is None:
            raise ApiError.unknown_operation(operation)
        result = await call(handler, params, ctx)
        return model, result


def _namespace() -> str:
    return service_model(SERVICE).metadata["xmlNamespace"]
