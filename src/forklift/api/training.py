"""SageMaker training-job operations mapped onto `forklift.control.TrainingService`.

Only shapes live here: request parameters in, AWS response members out, control-plane errors
turned into the codes AWS uses (a missing job is a ValidationException, as the waiters expect;
a duplicate name is ResourceInUse).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from forklift.api import describedefaults
from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.services import ApiServices
from forklift.api.tokens import decode_token, encode_token
from forklift.control.errors import ControlError, InvalidRequest, JobInUse, JobNotFound
from forklift.control.metricstore import MetricStore
from forklift.control.models import TrainingJobRow
from forklift.control.outcome import output_prefix
from forklift.control.plane import ControlPlane
from forklift.control.store import ListQuery, sort_key
from forklift.control.trainingmetrics import NAMESPACE, definitions_of, host_dimensions

ECHOED = ("HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig",
          "ResourceConfig", "VpcConfig", "Environment", "EnableNetworkIsolation",
          "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "RetryStrategy", "CheckpointConfig")


def _aws_errors(handler: Callable[[dict, RequestContext], dict]) -> Callable[[dict, RequestContext], dict]:
    @wraps(handler)
    def wrapped(params: dict, ctx: RequestContext) -> dict:
        try:
            return handler(params, ctx)
        except JobInUse as exc:
            raise ApiError.resource_in_use(str(exc)) from None
        except (JobNotFound, InvalidRequest, ControlError) as exc:
            raise ApiError.validation(str(exc)) from None
    return wrapped


def describe(row: TrainingJobRow) -> dict[str, Any]:
    request = row.request
    end = row.training_end
    # botocore's model has these at least 1: a job that ran less than a second counts one, as AWS bills it
    seconds = max(1, math.ceil(end - row.training_start)) if row.training_start and end else None
    body: dict[str, Any] = {
        "TrainingJobName": row.name,
        "TrainingJobArn": row.arn,
        "ModelArtifacts": {"S3ModelArtifacts": row.model_artifacts or f"{output_prefix(row)}/model.tar.gz"},
        "TrainingJobStatus": row.status,
        "SecondaryStatus": row.secondary_status,
        "FailureReason": row.failure_reason,
        "StoppingCondition": request.get("StoppingCondition"),
        "CreationTime": row.created_at,
        "TrainingStartTime": row.training_start,
        "TrainingEndTime": end,
        "LastModifiedTime": row.modified_at,
        "SecondaryStatusTransitions": row.transitions,
        "TrainingTimeInSeconds": seconds,
        "BillableTimeInSeconds": seconds,
        "ResolvedTrainingImage": row.resolved_image,  # forklift's extra member: the digest actually run
    }
    body.update({key: request[key] for key in ECHOED if key in request})
    return describedefaults.training_job(body)


def final_metric_data(metrics: MetricStore, row: TrainingJobRow) -> dict[str, Any]:
    """`FinalMetricDataList`: the newest value of each metric the job's MetricDefinitions found so far
    (during training too, as on SageMaker); absent for a job that defines none."""
    if not definitions_of(row.request):
        return {}
    latest = metrics.latest(NAMESPACE, host_dimensions(row.name))
    return {"FinalMetricDataList": [{"MetricName": a.series.metric_name, "Value": a.sum / a.sample_count,
                                     "Timestamp": a.timestamp} for a in latest]}


def summary(row: TrainingJobRow) -> dict[str, Any]:
    return {"TrainingJobName": row.name, "TrainingJobArn": row.arn, "CreationTime": row.created_at,
            "TrainingEndTime": row.training_end, "LastModifiedTime": row.modified_at,
            "TrainingJobStatus": row.status, "SecondaryStatus": row.secondary_status}


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def install(services: ApiServices, plane: ControlPlane) -> None:
    training = plane.training

    @services.sagemaker("CreateTrainingJob")
    @_aws_errors
    def create_training_job(params: dict, ctx: RequestContext) -> dict:
        row = training.create(params, ctx.arn("training-job", params["TrainingJobName"]), ctx.caller)
        return {"TrainingJobArn": row.arn}

    @services.sagemaker("DescribeTrainingJob")
    @_aws_errors
    def describe_training_job(params: dict, ctx: RequestContext) -> dict:
        row = training.describe(params["TrainingJobName"])
        return {**describe(row), **final_metric_data(plane.metrics, row)}

    @services.sagemaker("StopTrainingJob")
    @_aws_errors
    def stop_training_job(params: dict, ctx: RequestContext) -> dict:
        training.stop(params["TrainingJobName"])
        return {}

    @services.sagemaker("ListTrainingJobs")
    @_aws_errors
    def list_training_jobs(params: dict, ctx: RequestContext) -> dict:
        sort_by = params.get("SortBy", "CreationTime")
        order = params.get("SortOrder", "Ascending")
        kind = f"ListTrainingJobs:{sort_by}:{order}"
        after = decode_token(params["NextToken"], kind) if params.get("NextToken") else None
        query = ListQuery(
            name_contains=params.get("NameContains"), status=params.get("StatusEquals"),
            created_after=_epoch(params.get("CreationTimeAfter")),
            created_before=_epoch(params.get("CreationTimeBefore")),
            modified_after=_epoch(params.get("LastModifiedTimeAfter")),
            modified_before=_epoch(params.get("LastModifiedTimeBefore")),
            sort_by=sort_by, descending=order == "Descending", after=after,
            limit=int(params.get("MaxResults", 10)))
        rows, more = training.list(query)
        body: dict[str, Any] = {"TrainingJobSummaries": [summary(r) for r in rows]}
        if more and rows:
            body["NextToken"] = encode_token(sort_key(rows[-1], sort_by), kind)
        return body

    services.on_startup.append(plane.start)
    services.on_shutdown.append(plane.close)
