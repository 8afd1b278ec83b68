"""What the HTTP surface serves: the handler registry that the API's handler modules register in.

A SageMaker handler takes the request's validated parameters (botocore member names, timestamps as
aware datetimes, unknown members dropped) and a `RequestContext`, and returns the response dict
(datetimes are sent as epoch seconds, None members are dropped). It may be a plain function (run in
a worker thread) or a coroutine function. It answers errors by raising `ApiError`:

    services = ApiServices(region, account)   # forklift.api.wiring.build_services fills one in

    @services.sagemaker("DescribeTrainingJob")
    def describe_training_job(params: dict, ctx: RequestContext) -> dict:
        job = store.get(params["TrainingJobName"])
        if job is None:
            raise ApiError.validation("Requested resource not found.")
        return {"TrainingJobName": job.name, "TrainingJobArn": ctx.arn("training-job", job.name), ...}
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from forklift.api.context import RequestContext
from forklift.api.invocation import RuntimeHandler
from forklift.api.logs import FILTER_TIME_BUDGET
from forklift.api.validation import operation_model
from forklift.audit import AuditLog
from forklift.config import DEFAULT_ACCOUNT, DEFAULT_REGION
from forklift.control.logsource import LogSource
from forklift.control.metricstore import MetricStore

Result = Mapping[str, Any] | None
Handler = Callable[[dict, RequestContext], Result | Awaitable[Result]]
Hook = Callable[[], Awaitable[None] | None]
# (the request's ASGI scope, its body) -> who signed it (None: no signature needed); raises ApiError
# to refuse it. See forklift.api.authn.
Authenticator = Callable[[Mapping[str, Any], bytes], Any]


class Manifests(Protocol):
    """A resource's Kubernetes objects as multi-document YAML (`GET /_forklift/kubernetes/...`, api.kuberender);
    raises control errors (not found, cannot be rendered, not available)."""

    def training_job(self, name: str) -> str: ...

    def endpoint(self, name: str) -> str: ...


@dataclass
class ApiServices:
    """Defaults for ARNs, and the behaviour behind each route (the routes themselves do no work)."""

    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    sagemaker_handlers: dict[str, Handler] = field(default_factory=dict)
    runtime_handler: RuntimeHandler | None = None  # InvokeEndpoint; None: every endpoint is unknown
    log_source: LogSource | None = None  # None: every log group is unknown
    metrics: MetricStore | None = None  # CloudWatch's metrics (`api.cloudwatch`); None: no metric has data
    filter_time_budget: float = FILTER_TIME_BUDGET  # seconds a FilterLogEvents call scans, then it pages
    authenticate: Authenticator | None = None  # None: every request is accepted, signed or not
    audit: AuditLog | None = None  # where mutating calls are recorded; None: nowhere
    manifests: Manifests | None = None  # `forklift k8s render`; None: this server renders nothing
    buckets_root: Path | None = None  # the embedded bucket store the S3 API serves; None: no S3 API
    s3_virtual_hosts: tuple[str, ...] = ("localhost",)  # `<bucket>.<name>` Host names are virtual-host style S3
    on_startup: list[Hook] = field(default_factory=list)  # run when the server starts (e.g. a scheduler)
    on_shutdown: list[Hook] = field(default_factory=list)  # run, in reverse order, when it stops

    def register(self, operation: str, handler: Handler) -> Handler:
        """Serve SageMaker `operation` (e.g. "CreateTrainingJob") with `handler`."""
        if operation_model("sagemaker", operation) is None:
            raise ValueError(f"{operation!r} is not an operation of botocore's SageMaker model")
        self.sagemaker_handlers[operation] = handler
        return handler

    def sagemaker(self, operation: str) -> Callable[[Handler], Handler]:
        """Decorator form of `register`."""
        return lambda handler: self.register(operation, handler)


def _is_async(handler: Callable[..., Any]) -> bool:
    try:
        return _is_async_cached(handler)
    except TypeError:  # unhashable
        return _is_async_uncached(handler)


def _is_async_uncached(handler: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(type(handler).__call__)


_is_async_cached = functools.lru_cache(maxsize=1024)(_is_async_uncached)


async def call(handler: Callable[..., Any], *args: Any) -> Any:
    """Await an async handler; run a sync one in the thread pool (its result may still be awaitable)."""
    if _is_async(handler):
        result = handler(*args)
    else:
        result = await run_in_threadpool(handler, *args)
    if inspect.isawaitable(result):
        result = await result
    return result
