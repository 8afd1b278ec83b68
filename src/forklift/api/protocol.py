"""The wire format shared by every route: JSON bodies, ARNs, and AWS-shaped error responses."""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from forklift.api.errors import ApiError

__all__ = ["AMZ_JSON", "ApiError", "arn", "dumps", "epoch", "json_error", "json_response", "log_group_arn",
           "log_group_name", "rest_error"]

AMZ_JSON = "application/x-amz-json-1.1"
REQUEST_ID_HEADER = "x-amzn-RequestId"


def arn(resource_type: str, name: str, region: str, account: str, *, service: str = "sagemaker") -> str:
    """`arn:aws:sagemaker:<region>:<account>:<type>/<name>`; AWS lower-cases SageMaker names in ARNs."""
    return f"arn:aws:{service}:{region}:{account}:{resource_type}/{name.lower()}"


def log_group_arn(name: str, region: str, account: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{name}"


def log_group_name(identifier: str) -> str:
    """The group a `logGroupIdentifier` names: a name, or `arn:aws:logs:<region>:<account>:log-group:<name>[:*]`
    (only the name counts: a group is this server's whatever region and account its ARN says)."""
    if identifier.startswith("arn:"):
        return identifier.split(":log-group:", 1)[-1].removesuffix(":*")
    return identifier


def epoch(value: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _plain(value: Any) -> Any:
    """JSON-ready copy: datetimes → epoch float, bytes → base64, None members dropped."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, datetime):
        return epoch(value)
    if isinstance(value, date):
        return epoch(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    return json.dumps(_plain(value), separators=(",", ":"), allow_nan=False).encode()


def json_response(body: Mapping[str, Any] | None, status: int = 200, headers: Mapping[str, str] | None = None,
                  media_type: str = AMZ_JSON) -> Response:
    return Response(dumps(body or {}), status, headers=dict(headers or {}), media_type=media_type)


def json_error(error: ApiError) -> Response:
    """awsJson1.1: `{"__type": Code, "message": …}` (botocore reads `message` or `Message`)."""
    body = {"__type": error.code, "message": error.message, **error.fields}
    headers = {"x-amzn-ErrorType": error.code, **error.headers}
    return json_response(body, error.status, headers)


def rest_error(error: ApiError) -> Response:
    """rest-json: the code travels in `x-amzn-ErrorType`; the body holds the modelled members."""
    body = {"Message": error.message, **error.fields}
    headers = {"x-amzn-ErrorType": error.code, **error.headers}
    return json_response(body, error.status, headers, media_type="application/json")
