"""The HTTP surface of `forklift serve`: SageMaker (awsJson1.1), sagemaker-runtime InvokeEndpoint
(rest-json) and a CloudWatch Logs subset, validated against botocore's own service models.

The control plane plugs in through `ApiServices` (see `forklift.api.services`); `forklift.api.wiring`
builds the services `forklift serve` runs.
"""

from importlib import import_module

# Exported names and the module each lives in, loaded on first use: a client that only checks a
# request against the model (`forklift.api.validation`) does not load the server and its control plane.
_EXPORTS = {
    "create_app": "forklift.api.app", "RequestContext": "forklift.api.context", "ApiError": "forklift.api.errors",
    "InvokeRequest": "forklift.api.invocation", "InvokeResponse": "forklift.api.invocation",
    "arn": "forklift.api.protocol", "ApiServices": "forklift.api.services",
    "decode_token": "forklift.api.tokens", "encode_token": "forklift.api.tokens", "keyset_page": "forklift.api.tokens",
    "build_services": "forklift.api.wiring",
    "GroupInfo": "forklift.control.logsource", "LogEvent": "forklift.control.logsource",
    "LogSource": "forklift.control.logsource", "MemoryLogSource": "forklift.control.logsource",
    "StreamInfo": "forklift.control.logsource",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forklift.api' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = sorted(_EXPORTS)
