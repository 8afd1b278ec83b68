"""The ASGI app of `forklift serve`: routes mapped to handlers, nothing else.

    POST /                                  X-Amz-Target: SageMaker.<Op> | Logs_20140328.<Op>
                                            | GraniteServiceVersion20100801.<Op>, or a query form (CloudWatch)
    POST /service/GraniteServiceVersion20100801/operation/{Op}   CloudWatch in rpc-v2-cbor (api.cloudwatchwire)
    (S3, path or virtual-host style)        the embedded bucket store (api.s3api; api.s3routing tells it apart)
    POST /endpoints/{EndpointName}/invocations   sagemaker-runtime InvokeEndpoint
    GET  /ping                              health of the server itself
    GET  /_forklift/kubernetes/{training-jobs|endpoints}/{Name}   `forklift k8s render` (api.kuberender)

InvokeEndpoint, the data plane, and S3 go straight to their ASGI handlers; everything else through
Starlette's routing and middleware (which cost more per request than the whole proxy hop). Every
response carries `x-amzn-RequestId`; every error is AWS-shaped, and anything unexpected is a
500 `InternalFailure` whose details stay in the server log under the request id.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forklift import __version__
from forklift.api.admission import RequestGate
from forklift.api.audittrail import AuditTrail
from forklift.api.awsjson import JsonService, dispatch
from forklift.api.cloudwatch import NoMetrics, cloudwatch_handlers
from forklift.api.cloudwatchwire import CBOR_ROUTE, CloudWatchWire, claims
from forklift.api.context import RequestContext, build_context, new_request_id
from forklift.api.edge import EdgeLimits
from forklift.api.errors import ApiError
from forklift.api.kuberender import kube_routes
from forklift.api.logs import logs_handlers
from forklift.api.protocol import REQUEST_ID_HEADER, json_error, json_response
from forklift.api.s3api import S3Api
from forklift.api.s3routing import is_s3
from forklift.api.sagemaker_runtime import endpoint_in_path, invoke_endpoint
from forklift.api.services import ApiServices, call
from forklift.api.sigv4 import Principal
from forklift.api.validation import compile_patterns, service_model
from forklift.control.logsource import NoLogs

log = logging.getLogger(__name__)


class RequestIdMiddleware:
    """Gives each request a uuid4 id (scope state + response header) and turns escaped errors into 500s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER.lower() not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request %s failed", request_id)
            if started:
                raise
            await json_error(ApiError.internal())(scope, receive, send_with_id)


async def _guarded(render: Callable[[ApiError], Response], work: Awaitable[Response], request_id: str) -> Response:
    try:
        return await work
    except ApiError as error:
        if error.status >= 500:
            log.warning("request %s: %s %s", request_id, error.code, error.message)
        return render(error)
    except ClientDisconnect:  # gone before its body was read: nothing is handled, and no one reads an answer
        log.debug("request %s: the client went away before its body arrived", request_id)
        return render(ApiError("RequestTimeout", "The client closed the connection before its body arrived.", 400))
    except Exception:
        log.exception("request %s failed", request_id)
        return render(ApiError.internal())


def create_app(services: ApiServices, limits: EdgeLimits | None = None) -> ForkliftApp:
    """The app serving `services`; `limits` (config.toml's `[server]`) bound the control-plane requests
    in progress at once (`api.admission`)."""
    limits = limits or EdgeLimits()
    gate = RequestGate(limits.max_requests_in_flight, limits.request_queue_seconds,
                       limits.max_requests_in_flight_per_caller)
    json_services = {
        "SageMaker": JsonService("sagemaker", "ValidationException", services.sagemaker_handlers),
        "Logs_20140328": JsonService("logs", "InvalidParameterException",
                                     logs_handlers(services.log_source or NoLogs(), services.filter_time_budget)),
    }

    def context(request: Request, operation: str, principal: Principal | None) -> RequestContext:
        return build_context(request.state.request_id, request.headers, request.query_params,
                             services.region, services.account, operation, principal)

    trail = AuditTrail(services.audit, services.region, services.account) if services.audit else None
    cloudwatch = CloudWatchWire(cloudwatch_handlers(services.metrics or NoMetrics()), context,
                                services.authenticate, gate)

    async def aws_json(request: Request) -> Response:
        if claims(request):  # CloudWatch shares `POST /` in its JSON and query protocols
            return await cloudwatch_root(request)
        if trail is None:
            work = dispatch(request, json_services, context, services.authenticate, gate)
        else:
            work = trail.around(request, dispatch(request, json_services, context,
                                                  trail.watch(request, services.authenticate), gate))
        return await _guarded(json_error, work, request.state.request_id)

    async def cloudwatch_root(request: Request) -> Response:
        request_id = request.state.request_id
        if "x-amz-target" in request.headers:
            return await _guarded(cloudwatch.json_error, cloudwatch.json(request), request_id)
        return await _guarded(cloudwatch.query_error(request_id), cloudwatch.query(request), request_id)

    async def cloudwatch_cbor(request: Request) -> Response:
        return await _guarded(cloudwatch.cbor_error, cloudwatch.rpc_v2_cbor(request), request.state.request_id)

    async def ping(request: Request) -> Response:
        return json_response({"status": "Healthy", "version": __version__}, media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = f"No route for {request.method} {request.url.path}"
        return json_error(ApiError("UnknownOperationException", message, exc.status_code))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        models = ("sagemaker", "sagemaker-runtime", "logs", "cloudwatch")
        for name in models:  # load once, before the first request
            await call(service_model, name)
        threading.Thread(target=lambda: [compile_patterns(m) for m in models], name="compile-patterns",
                         daemon=True).start()
        for hook in services.on_startup:
            await call(hook)
        # The service models and everything loaded so far live as long as the server: keep them out
        # of the cyclic collector, whose full passes over them stalled requests for tens of ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for hook in reversed(services.on_shutdown):
                await call(hook)

    app = Starlette(
        routes=[
            Route("/", aws_json, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route(CBOR_ROUTE, cloudwatch_cbor, methods=["POST"]),
            *kube_routes(services),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.services = services
    s3 = None
    if services.buckets_root is not None:
        s3 = S3Api(services.buckets_root, services.s3_virtual_hosts, services.region, services.account,
                   services.authenticate, services.audit)
    return ForkliftApp(app, services, s3)


class ForkliftApp:
    """The server's ASGI app: S3 and InvokeEndpoint to their own handlers, the rest to the Starlette `control` app."""

    def __init__(self, control: Starlette, services: ApiServices, s3: S3Api | None = None) -> None:
        self.control = control
        self.services = services
        self.state = control.state
        self.s3 = s3

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.s3 is not None and is_s3(scope, self.s3.virtual_hosts):
            await self.s3(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = endpoint_in_path(scope["path"])
            if endpoint is not None:
                await self.invoke(endpoint, scope, receive, send)
                return
        await self.control(scope, receive, send)

    async def invoke(self, endpoint: str, scope: Scope, receive: Receive, send: Send) -> None:
        """InvokeEndpoint on `endpoint` (also called by `forklift.api.dataplane` directly)."""
        services = self.services
        await invoke_endpoint(endpoint, scope, receive, send, services.runtime_handler, services.region,
                              services.account, services.authenticate)
