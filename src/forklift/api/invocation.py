"""What InvokeEndpoint hands the runtime handler and gets back (see `forklift.api.sagemaker_runtime`)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forklift.api.context import RequestContext


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


RuntimeHandler = Callable[[InvokeRequest, RequestContext], InvokeResponse | Awaitable[InvokeResponse]]
