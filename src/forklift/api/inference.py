"""SageMaker model, endpoint-config and endpoint operations mapped onto `InferenceService`.

Only shapes live here: parameters in, AWS response members out, and control-plane errors turned
into what AWS answers (a missing resource is a ValidationException 'Could not find model "arn…".',
which the EndpointInService/EndpointDeleted waiters depend on).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from forklift.api import describedefaults
from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.services import ApiServices
from forklift.api.tokens import keyset_page
from forklift.control.inference import Inference
from forklift.control.inference.errors import ControlError, InUse, ResourceMissing
from forklift.control.inference.models import EndpointConfigRow, EndpointRow, ModelRow

NOT_FOUND = {"model": "model", "endpoint-config": "endpoint configuration", "endpoint": "endpoint"}
MODEL_ECHO = ("PrimaryContainer", "Containers", "InferenceExecutionConfig", "ExecutionRoleArn", "VpcConfig",
              "EnableNetworkIsolation")
CONFIG_ECHO = ("ProductionVariants", "DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig",
               "ShadowProductionVariants", "ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation")
SUMMARY_KEYS = ("VariantName", "DeployedImages", "CurrentWeight", "DesiredWeight", "CurrentInstanceCount",
                "DesiredInstanceCount", "VariantStatus")


def _aws_errors(handler: Callable[[dict, RequestContext], dict]) -> Callable[[dict, RequestContext], dict]:
    @wraps(handler)
    def wrapped(params: dict, ctx: RequestContext) -> dict:
        try:
            return handler(params, ctx)
        except ResourceMissing as exc:
            raise ApiError.validation(f"Could not find {NOT_FOUND[exc.kind]} \"{ctx.arn(exc.kind, exc.name)}\".") \
                from None
        except InUse as exc:
            raise ApiError.validation(str(exc)) from None
        except ControlError as exc:
            raise ApiError.validation(str(exc)) from None
    return wrapped


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _listing(rows: list, params: dict, kind: str, status_of: Callable[[Any], str] | None = None,
             modified_of: Callable[[Any], float] | None = None) -> tuple[list, str | None]:
    """Filters, sort and keyset pagination of the List* operations (small tables: done in memory)."""
    name_contains = (params.get("NameContains") or "").lower()
    bounds = [(lambda r: r.created_at, params.get("CreationTimeAfter"), params.get("CreationTimeBefore"))]
    if modified_of is not None:
        bounds.append((modified_of, params.get("LastModifiedTimeAfter"), params.get("LastModifiedTimeBefore")))
    kept = []
    for row in rows:
        if name_contains and name_contains not in row.name.lower():
            continue
        if status_of and params.get("StatusEquals") and status_of(row) != params["StatusEquals"]:
            continue
        if any((after and not value(row) > _epoch(after)) or (before and not value(row) < _epoch(before))
               for value, after, before in bounds):
            continue
        kept.append(row)
    sort_by = params.get("SortBy", "CreationTime")
    order = params.get("SortOrder", "Descending")
    if sort_by == "Name":
        def key(r: Any) -> tuple[Any, ...]:
            return (r.name,)
    elif sort_by == "Status" and status_of:
        def key(r: Any) -> tuple[Any, ...]:
            return (status_of(r), r.name)
    else:
        def key(r: Any) -> tuple[Any, ...]:
            return (r.created_at, r.name)
    return keyset_page(kept, key, token=params.get("NextToken"), limit=int(params.get("MaxResults", 10)),
                       descending=order == "Descending", kind=f"{kind}:{sort_by}:{order}")


def describe_endpoint(row: EndpointRow) -> dict[str, Any]:
    return {
        "EndpointName": row.name, "EndpointArn": row.arn, "EndpointConfigName": row.config_name,
        "ProductionVariants": [{k: v[k] for k in SUMMARY_KEYS if k in v} for v in row.variants],
        "EndpointStatus": row.status, "FailureReason": row.failure_reason,
        "CreationTime": row.created_at, "LastModifiedTime": row.modified_at,
    }


def install(services: ApiServices, inference: Inference) -> None:
    """Serve the model, endpoint-config and endpoint operations."""
    service = inference.service

    @services.sagemaker("CreateModel")
    @_aws_errors
    def create_model(params: dict, ctx: RequestContext) -> dict:
        return {"ModelArn": service.create_model(params, ctx.arn("model", params["ModelName"]), ctx.caller).arn}

    @services.sagemaker("DescribeModel")
    @_aws_errors
    def describe_model(params: dict, ctx: RequestContext) -> dict:
        row: ModelRow = service.get(ModelRow, params["ModelName"])
        body = {"ModelName": row.name, "ModelArn": row.arn, "CreationTime": row.created_at}
        body.update({k: row.request[k] for k in MODEL_ECHO if k in row.request})
        return describedefaults.model(body)

    @services.sagemaker("ListModels")
    @_aws_errors
    def list_models(params: dict, ctx: RequestContext) -> dict:
        page, token = _listing(service.store.all(ModelRow), params, "ListModels")
        return {"Models": [{"ModelName": r.name, "ModelArn": r.arn, "CreationTime": r.created_at} for r in page],
                "NextToken": token}

    @services.sagemaker("DeleteModel")
    @_aws_errors
    def delete_model(params: dict, ctx: RequestContext) -> dict:
        service.delete_model(params["ModelName"])
        return {}

    @services.sagemaker("CreateEndpointConfig")
    @_aws_errors
    def create_endpoint_config(params: dict, ctx: RequestContext) -> dict:
        arn = ctx.arn("endpoint-config", params["EndpointConfigName"])
        return {"EndpointConfigArn": service.create_endpoint_config(params, arn, ctx.caller).arn}

    @services.sagemaker("DescribeEndpointConfig")
    @_aws_errors
    def describe_endpoint_config(params: dict, ctx: RequestContext) -> dict:
        row: EndpointConfigRow = service.get(EndpointConfigRow, params["EndpointConfigName"])
        body = {"EndpointConfigName": row.name, "EndpointConfigArn": row.arn, "CreationTime": row.created_at}
        body.update({k: row.request[k] for k in CONFIG_ECHO if k in row.request})
        return describedefaults.endpoint_config(body)

    @services.sagemaker("ListEndpointConfigs")
    @_aws_errors
    def list_endpoint_configs(params: dict, ctx: RequestContext) -> dict:
        page, token = _listing(service.store.all(EndpointConfigRow), params, "ListEndpointConfigs")
        return {"EndpointConfigs": [{"EndpointConfigName": r.name, "EndpointConfigArn": r.arn,
                                     "CreationTime": r.created_at} for r in page], "NextToken": token}

    @services.sagemaker("DeleteEndpointConfig")
    @_aws_errors
    def delete_endpoint_config(params: dict, ctx: RequestContext) -> dict:
        service.delete_endpoint_config(params["EndpointConfigName"])
        return {}

    @services.sagemaker("CreateEndpoint")
    @_aws_errors
    def create_endpoint(params: dict, ctx: RequestContext) -> dict:
        if params.get("DeploymentConfig"):
            raise ApiError.validation("DeploymentConfig (blue/green and rolling deployments) is not yet supported "
                                      "by forklift: updates always start the new fleet before stopping the old")
        return {"EndpointArn": service.create_endpoint(params, ctx.arn("endpoint", params["EndpointName"]),
                                                        ctx.caller).arn}

    @services.sagemaker("DescribeEndpoint")
    @_aws_errors
    def describe(params: dict, ctx: RequestContext) -> dict:
        return describe_endpoint(service.get(EndpointRow, params["EndpointName"]))

    @services.sagemaker("ListEndpoints")
    @_aws_errors
    def list_endpoints(params: dict, ctx: RequestContext) -> dict:
        page, token = _listing(service.store.all(EndpointRow), params, "ListEndpoints",
                               status_of=lambda r: r.status, modified_of=lambda r: r.modified_at)
        return {"Endpoints": [{"EndpointName": r.name, "EndpointArn": r.arn, "CreationTime": r.created_at,
                               "LastModifiedTime": r.modified_at, "EndpointStatus": r.status} for r in page],
                "NextToken": token}

    @services.sagemaker("UpdateEndpoint")
    @_aws_errors
    def update_endpoint(params: dict, ctx: RequestContext) -> dict:
        if params.get("RetainAllVariantProperties") or params.get("DeploymentConfig"):
            raise ApiError.validation("RetainAllVariantProperties and DeploymentConfig are not yet supported by "
                                      "forklift")
        return {"EndpointArn": service.update_endpoint(params["EndpointName"], params["EndpointConfigName"]).arn}

    @services.sagemaker("UpdateEndpointWeightsAndCapacities")
    @_aws_errors
    def update_weights(params: dict, ctx: RequestContext) -> dict:
        row = service.update_weights_and_capacities(params["EndpointName"],
                                                    params["DesiredWeightsAndCapacities"])
        return {"EndpointArn": row.arn}

    @services.sagemaker("DeleteEndpoint")
    @_aws_errors
    def delete_endpoint(params: dict, ctx: RequestContext) -> dict:
        service.delete_endpoint(params["EndpointName"])
        return {}
