"""The HTTP surface of `forklift serve`: SageMaker (awsJson1.1), sagemaker-runtime InvokeEndpoint
(rest-json) and a CloudWatch Logs subset, validated against botocore's own service models.

The control plane plugs in through `ApiServices` (see `forklift.api.services`).
"""

from forklift.api.app import create_app
from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.logsource import GroupInfo, LogEvent, LogSource, MemoryLogSource, StreamInfo
from forklift.api.protocol import arn
from forklift.api.runtime import InvokeRequest, InvokeResponse
from forklift.api.services import ApiServices, build_services
from forklift.api.tokens import decode_token, encode_token, keyset_page

__all__ = [
    "ApiError", "ApiServices", "GroupInfo", "InvokeRequest", "InvokeResponse", "LogEvent", "LogSource",
    "MemoryLogSource", "RequestContext", "StreamInfo", "arn", "build_services", "create_app", "decode_token",
    "encode_token", "keyset_page",
]
