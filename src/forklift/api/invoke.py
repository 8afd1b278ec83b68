"""InvokeEndpoint's runtime handler: pick a variant and an instance, proxy `POST /invocations`.

Nothing here touches the database: the fleet manager keeps the `Router` current, and one
`UpstreamPool` keeps connections to the containers alive, so forklift adds little to a call (see
`forklift.api.upstream` for why it is not httpx). Small answers are read whole;
anything larger (or of unknown length) is streamed back as it arrives.

    container 4xx/5xx             -> ModelError 424 (OriginalStatusCode, OriginalMessage)
    no answer within 60 s         -> ModelError 424
    instance refuses a connection -> one retry on another instance (it may just have been retired)
    unknown or not InService      -> ValidationError "Endpoint X of account N not found."
    InService, no healthy instance -> ServiceUnavailable 503 (botocore retries it)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.invocation import InvokeRequest, InvokeResponse
from forklift.api.logs import group_arn
from forklift.api.services import ApiServices
from forklift.api.upstream import Answer, UpstreamConnectError, UpstreamError, UpstreamPool
from forklift.control.inference.logs import GROUP_PREFIX
from forklift.control.inference.routing import EndpointRoute, InstanceRoute, Router, UnknownVariant

TIMEOUT = 60.0  # SageMaker's limit for an answer to /invocations
PORT = 8080
REFUSED_PAUSE = 5.0
READ_WHOLE = 256 * 1024  # answers up to this size are returned in one piece
DEFAULT_CONTENT_TYPE = "application/octet-stream"
FORWARDED = {"accept": "Accept", "custom_attributes": "X-Amzn-SageMaker-Custom-Attributes",
             "target_model": "X-Amzn-SageMaker-Target-Model", "inference_id": "X-Amzn-SageMaker-Inference-Id",
             "enable_explanations": "X-Amzn-SageMaker-Enable-Explanations",
             "target_variant": "X-Amzn-SageMaker-Target-Variant"}


def _timed_out(variant: str) -> ApiError:
    return ApiError.model_error(f"Your invocation timed out while waiting for a response from container primary "
                                f"of variant {variant}: it did not answer within {TIMEOUT:g} seconds")


class InvocationRecorder(Protocol):
    """Where each invocation's outcome is counted (`control.inference.invocationmetrics`): an in-memory add."""

    def record(self, endpoint: str, variant: str, status: int | None, model_seconds: float | None,
               overhead_seconds: float) -> None: ...


class _NoRecorder:
    def record(self, endpoint: str, variant: str, status: int | None, model_seconds: float | None,
               overhead_seconds: float) -> None:
        pass


class InvokeProxy:
    def __init__(self, router: Router, metrics: InvocationRecorder | None = None):
        self.router = router
        self.pool = UpstreamPool()
        self.metrics = metrics or _NoRecorder()

    async def aclose(self) -> None:
        self.pool.close()

    async def __call__(self, request: InvokeRequest, ctx: RequestContext) -> InvokeResponse:
        started = time.perf_counter()
        route = self.router.get(request.endpoint_name)
        if route is None:
            raise ApiError.endpoint_not_found(request.endpoint_name, ctx.account)
        if not route.variants:  # InService, but every instance is being replaced: a transient 503
            raise ApiError.service_unavailable(f"Endpoint {request.endpoint_name} has no healthy instance right "
                                               "now; its instances are being replaced. Retry shortly.")
        headers = {"Content-Type": request.content_type or DEFAULT_CONTENT_TYPE}
        for field, header in FORWARDED.items():
            value = getattr(request, field)
            if value is not None:
                headers[header] = value
        for attempt in (1, 2):
            variant, instance = _pick(route, request)
            instance.in_flight += 1
            sent = time.perf_counter()
            try:
                answer = await self.pool.post(instance.address, PORT, "/invocations", request.body, headers,
                                              timeout=TIMEOUT)
            except UpstreamConnectError as exc:
                instance.in_flight -= 1
                # Until the fleet's health check replaces it (within seconds), send nothing more its way.
                instance.refused_until = time.monotonic() + REFUSED_PAUSE
                if attempt == 2:
                    self._failed(request.endpoint_name, variant.name, started)
                    raise ApiError.model_error(f"Could not reach the container of variant {variant.name}: {exc}") \
                        from None
                route = self.router.get(request.endpoint_name)  # the fleet may have just changed
                if route is None or not route.variants:
                    raise ApiError.service_unavailable(f"Endpoint {request.endpoint_name} has no reachable "
                                                       "instance right now. Retry shortly.") from None
                continue
            except TimeoutError:
                instance.in_flight -= 1
                self._failed(request.endpoint_name, variant.name, started)
                raise _timed_out(variant.name) from None
            except UpstreamError as exc:
                instance.in_flight -= 1
                self._failed(request.endpoint_name, variant.name, started)
                raise ApiError.model_error(f"The container of variant {variant.name} failed: {exc}") from None
            except BaseException:
                instance.in_flight -= 1
                raise
            return await self._answer(answer, instance, variant.name, request.endpoint_name, ctx, (started, sent))
        raise AssertionError("unreachable")

    def _failed(self, endpoint: str, variant: str, started: float) -> None:
        self.metrics.record(endpoint, variant, None, None, time.perf_counter() - started)

    async def _answer(self, answer: Answer, instance: InstanceRoute, variant: str, endpoint: str,
                      ctx: RequestContext, times: tuple[float, float]) -> InvokeResponse:
        streamed = False
        started, sent = times
        try:
            if answer.status >= 400 or (answer.length is not None and answer.length <= READ_WHOLE):
                body: bytes | AsyncIterator[bytes] = await answer.read()
            else:
                body, streamed = _stream(answer, instance), True
        except (UpstreamError, OSError) as exc:
            self._failed(endpoint, variant, started)
            raise ApiError.model_error(f"The container of variant {variant} failed while answering: {exc}") \
                from None
        finally:
            if not streamed:
                instance.in_flight -= 1
                answer.release()
        answered = time.perf_counter()  # a streamed answer's model time ends at its head
        self.metrics.record(endpoint, variant, answer.status, answered - sent, sent - started)
        if answer.status >= 400:
            text = body.decode(errors="replace")
            kind = "client" if answer.status < 500 else "server"
            group = GROUP_PREFIX + endpoint
            raise ApiError.model_error(
                f"Received {kind} error ({answer.status}) from primary with message \"{text}\". See the log group "
                f"{group} in account {ctx.account} (`forklift endpoints logs {endpoint}`) for more information.",
                answer.status, text, group_arn(ctx, group))
        return InvokeResponse(body=body, content_type=answer.headers.get("content-type", DEFAULT_CONTENT_TYPE),
                              invoked_production_variant=variant,
                              custom_attributes=answer.headers.get("x-amzn-sagemaker-custom-attributes"))


def _pick(route: EndpointRoute, request: InvokeRequest):
    try:
        return route.pick(request.target_variant)
    except UnknownVariant:
        raise ApiError.runtime_validation(
            f"The variant {request.target_variant} does not exist for endpoint {request.endpoint_name}.") from None


async def _stream(answer: Answer, instance: InstanceRoute) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.chunks():
            yield chunk
    finally:
        instance.in_flight -= 1
        answer.release()


def install(services: ApiServices, router: Router, metrics: InvocationRecorder | None = None) -> InvokeProxy:
    proxy = InvokeProxy(router, metrics)
    services.runtime_handler = proxy
    services.on_shutdown.append(proxy.aclose)
    return proxy
