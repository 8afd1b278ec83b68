"""Typed API errors: what a handler raises to answer with an AWS error code.

The route renders them for its protocol: awsJson1.1 (`SageMaker.*`, `Logs_20140328.*`) as
`{"__type": code, "message": …}`; rest-json (`sagemaker-runtime`) with the `x-amzn-errortype`
header and `{"Message": …}`. Extra modelled members (ModelError's `OriginalStatusCode` …) go in
`fields`; botocore surfaces them on the exception's response.
"""

from __future__ import annotations

from typing import Any

from forklift.errors import ForkliftError


class ApiError(ForkliftError):
    """An AWS-shaped error: `code` becomes `ClientError.response["Error"]["Code"]`."""

    def __init__(self, code: str, message: str, status: int = 400, *,
                 fields: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, status={self.status})"

    # SageMaker control plane (modelled codes raise `client.exceptions.<Code>`).
    @classmethod
    def validation(cls, message: str) -> ApiError:
        """`ValidationException`, also AWS's answer for most missing resources (waiters rely on it)."""
        return cls("ValidationException", message)

    @classmethod
    def resource_not_found(cls, message: str) -> ApiError:
        return cls("ResourceNotFound", message)

    @classmethod
    def resource_in_use(cls, message: str) -> ApiError:
        return cls("ResourceInUse", message)

    @classmethod
    def resource_limit_exceeded(cls, message: str) -> ApiError:
        return cls("ResourceLimitExceeded", message)

    @classmethod
    def unknown_operation(cls, operation: str) -> ApiError:
        return cls("UnknownOperationException", f"Operation {operation} is not supported by forklift")

    @classmethod
    def serialization(cls, message: str) -> ApiError:
        return cls("SerializationException", message)

    @classmethod
    def internal(cls) -> ApiError:
        """Never carries details: the traceback is logged on the server under the request id."""
        return cls("InternalFailure", "We encountered an internal error. Please try again.", 500)

    # sagemaker-runtime
    @classmethod
    def runtime_validation(cls, message: str) -> ApiError:
        return cls("ValidationError", message)

    @classmethod
    def endpoint_not_found(cls, endpoint: str, account: str) -> ApiError:
        return cls("ValidationError", f"Endpoint {endpoint} of account {account} not found.")

    @classmethod
    def model_error(cls, message: str, original_status: int | None = None, original_message: str | None = None,
                    log_stream_arn: str | None = None) -> ApiError:
        """The container answered 4xx/5xx: HTTP 424 with the container's status and body."""
        fields = {"OriginalStatusCode": original_status, "OriginalMessage": original_message,
                  "LogStreamArn": log_stream_arn}
        return cls("ModelError", message, 424, fields={k: v for k, v in fields.items() if v is not None})

    @classmethod
    def service_unavailable(cls, message: str) -> ApiError:
        return cls("ServiceUnavailable", message, 503)

    # CloudWatch Logs
    @classmethod
    def logs_not_found(cls, message: str) -> ApiError:
        return cls("ResourceNotFoundException", message)

    @classmethod
    def logs_invalid_parameter(cls, message: str) -> ApiError:
        return cls("InvalidParameterException", message)
