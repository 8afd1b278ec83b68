"""The audit record of each mutating awsJson call (see `forklift.audit` for the log itself).

`AuditTrail.around` wraps one call of `forklift.api.awsjson.dispatch` from the outside: it watches
the authenticator to learn who signed (and, from the body it is handed, which resource the request
names), awaits the dispatch, and appends one record with the outcome, `"ok"` or the error code the
client got, whichever step refused it: a bad signature, a request that fails validation, a denied
or failed operation. Reads are not recorded (an operation named Describe*, List*, Get*, Search*,
Batch-describe…, Query*, Filter*, Test*, Render*), nor are operations outside botocore's models;
InvokeEndpoint does not come this way (it is the data plane).

A record names the resource by the request's first `…Name`/`…Arn` member (the required ones first,
in the model's order), as an ARN for the kinds forklift serves; never any other parameter, so
nothing a request carries (environment, hyperparameters, credentials) reaches the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Mapping
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from forklift.api.context import ANONYMOUS, parse_sigv4
from forklift.api.errors import ApiError
from forklift.api.protocol import arn
from forklift.api.services import Authenticator
from forklift.api.sigv4 import Principal
from forklift.api.validation import operation_model
from forklift.audit import OK, AuditLog

log = logging.getLogger(__name__)

MODELS = {"SageMaker": "sagemaker", "Logs_20140328": "logs"}  # X-Amz-Target prefix -> botocore model
READ_PREFIXES = ("Describe", "List", "Get", "Search", "BatchDescribe", "BatchGet", "Query", "Filter", "Test",
                 "Render")
# the member that names a resource -> the ARN type it is named by
ARN_TYPES = {"TrainingJobName": "training-job", "ModelName": "model", "EndpointConfigName": "endpoint-config",
             "EndpointName": "endpoint"}


def is_mutating(operation: str) -> bool:
    """Whether a call of `operation` may change something (decided from its name, as IAM's access
    levels mostly are)."""
    return not operation.startswith(READ_PREFIXES)


@lru_cache(maxsize=512)
def resource_members(model: str, operation: str) -> tuple[str, ...]:
    """The string members of `operation`'s input that name a resource, required ones first."""
    found = operation_model(model, operation)
    shape = found.input_shape if found is not None else None
    if shape is None:
        return ()
    naming = [name for name, member in shape.members.items()
              if member.type_name == "string" and name.endswith(("Name", "Arn", "name"))]
    required = set(shape.required_members)
    return tuple(sorted(naming, key=lambda name: name not in required))


class AuditTrail:
    """Records the mutating calls of one server (`region` and `account` are those of its ARNs)."""

    def __init__(self, audit: AuditLog, region: str, account: str):
        self.audit, self.region, self.account = audit, region, account

    def _operation(self, request: Request) -> tuple[str, str] | None:
        prefix, _, operation = request.headers.get("x-amz-target", "").partition(".")
        model = MODELS.get(prefix)
        if model is None or not is_mutating(operation) or operation_model(model, operation) is None:
            return None
        return model, operation

    def watch(self, request: Request, authenticate: Authenticator | None) -> Authenticator | None:
        """The authenticator `dispatch` should call for `request`: the one given, watched when the
        call is recorded (its answer and the body it sees are noted on the request)."""
        if self._operation(request) is None:
            return authenticate

        def watched(scope: Mapping[str, Any], body: bytes) -> Any:
            request.state.audit_body = body
            principal = authenticate(scope, body) if authenticate is not None else None
            request.state.audit_principal = principal
            return principal
        return watched

    async def around(self, request: Request, work: Awaitable[Response]) -> Response:
        """Await `work` (the dispatch of `request`) and record how it ended."""
        found = self._operation(request)
        if found is None:
            return await work
        outcome = "Interrupted"  # cancelled before an answer (the client went away, the server stops)
        try:
            response = await work
            outcome = OK
            return response
        except ApiError as error:
            outcome = error.code
            raise
        except Exception:
            outcome = ApiError.internal().code
            raise
        finally:
            try:
                self.audit.append(self._record(request, *found, outcome))
            except OSError:
                log.exception("the audit record of request %s could not be written", request.state.request_id)

    def _record(self, request: Request, model: str, operation: str, outcome: str) -> dict[str, Any]:
        principal: Principal | None = getattr(request.state, "audit_principal", None)
        claimed = parse_sigv4(request.headers.get("authorization"), request.query_params.get("X-Amz-Credential"))
        record: dict[str, Any] = {
            "event": "api",
            "principal": principal.arn(self.account) if principal else ANONYMOUS,
            "operation": operation,
            "resource": self._resource(model, operation, getattr(request.state, "audit_body", b""),
                                       claimed.region if claimed else self.region),
            "outcome": outcome,
            "request_id": request.state.request_id,
            "source": request.client.host if request.client else None,
        }
        key_id = principal.access_key_id if principal else claimed.access_key_id if claimed else None
        if key_id:
            record["access_key_id"] = key_id  # the id only: never the signature, never a secret
        return record

    def _resource(self, model: str, operation: str, body: bytes, region: str) -> str | None:
        members = resource_members(model, operation)
        if not members or not body:
            return None
        try:
            params = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(params, dict):
            return None
        for member in members:
            value = params.get(member)
            if isinstance(value, str) and value:
                value = value[:1024]
                kind = ARN_TYPES.get(member) if model == "sagemaker" else None
                return arn(kind, value, region, self.account) if kind and not value.startswith("arn:") \
                    else value
        return None
