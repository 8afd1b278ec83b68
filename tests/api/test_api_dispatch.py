"""Handler registry and dispatch: sync and async handlers, ApiError mapping, 500s, runtime handler.

boto3 (and httpx for raw protocol checks) talk to the app under uvicorn in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from forklift.api import ApiError, ApiServices, InvokeRequest, InvokeResponse, RequestContext, keyset_page

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def describe_job(params: dict, ctx: RequestContext) -> dict:
    name = params["TrainingJobName"]
    if name == "missing":
        raise ApiError.validation("Requested resource not found.")
    return {
        "TrainingJobName": name,
        "TrainingJobArn": ctx.arn("training-job", name),
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/{name}/output/model.tar.gz"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": T0,
        "FailureReason": None,
        "Environment": {"CALLER": ctx.access_key_id or "", "REGION": ctx.region,
                        "THREAD": threading.current_thread().name},
    }


async def create_job(params: dict, ctx: RequestContext) -> dict:
    await asyncio.sleep(0)
    errors = {"dup": ApiError.resource_in_use, "full": ApiError.resource_limit_exceeded,
              "gone": ApiError.resource_not_found}
    if params["TrainingJobName"] in errors:
        raise errors[params["TrainingJobName"]](f"Training job {params['TrainingJobName']} is busy")
    if params["TrainingJobName"] == "crash":
        raise RuntimeError("db password=hunter2 leaked")
    if params["TrainingJobName"] == "not-a-dict":
        return ["oops"]  # type: ignore[return-value]
    return {"TrainingJobArn": ctx.arn("training-job", params["TrainingJobName"]),
            "Thread": threading.current_thread().name}


def training_job(name: str) -> dict:
    return {"TrainingJobName": name, "RoleArn": "arn:aws:iam::123456789012:role/Role",
            "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}}


@pytest.fixture
def services() -> ApiServices:
    services = ApiServices(region="us-east-1", account="123456789012")
    services.register("DescribeTrainingJob", describe_job)
    services.register("CreateTrainingJob", create_job)
    services.register("StopTrainingJob", lambda params, ctx: None)
    return services


@pytest.fixture
def sm(services, serve_app):
    return serve_app(services).client("sagemaker", region="us-west-2")


def test_sync_handler_runs_in_a_worker_thread_with_signed_region(sm) -> None:
    job = sm.describe_training_job(TrainingJobName="My-Job")
    assert job["TrainingJobArn"] == "arn:aws:sagemaker:us-west-2:123456789012:training-job/my-job"
    assert job["CreationTime"] == T0
    assert "FailureReason" not in job
    assert job["Environment"]["CALLER"] == "AKIDFORKLIFTTEST"
    assert job["Environment"]["REGION"] == "us-west-2"
    assert job["Environment"]["THREAD"] != threading.main_thread().name
    assert job["ResponseMetadata"]["RequestId"]


def test_async_handler_and_empty_output(sm, services) -> None:
    created = sm.create_training_job(**training_job("job-1"))
    assert created["TrainingJobArn"].endswith(":training-job/job-1")
    assert sm.stop_training_job(TrainingJobName="job-1")["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize(("name", "code"), [
    ("dup", "ResourceInUse"), ("full", "ResourceLimitExceeded"), ("gone", "ResourceNotFound")])
def test_api_errors_become_modelled_exceptions(sm, name: str, code: str) -> None:
    with pytest.raises(getattr(sm.exceptions, code)) as excinfo:
        sm.create_training_job(**training_job(name))
    assert excinfo.value.response["Error"] == {"Code": code, "Message": f"Training job {name} is busy"}
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_missing_resource_is_validation_exception_and_waiters_agree(sm) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.describe_training_job(TrainingJobName="missing")
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    waiter = sm.get_waiter("training_job_completed_or_stopped")
    waiter.wait(TrainingJobName="done", WaiterConfig={"Delay": 1, "MaxAttempts": 1})


def test_unexpected_exception_is_internal_failure_without_details(sm, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="forklift.api"), pytest.raises(ClientError) as excinfo:
        sm.create_training_job(**training_job("crash"))
    error = excinfo.value.response
    assert error["Error"]["Code"] == "InternalFailure"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "hunter2" not in error["Error"]["Message"]
    request_id = error["ResponseMetadata"]["RequestId"]
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info and "hunter2" in str(logged[0].exc_info[1])


def test_handler_returning_a_non_dict_is_internal_failure(sm) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.create_training_job(**training_job("not-a-dict"))
    assert excinfo.value.response["Error"]["Code"] == "InternalFailure"


def test_register_rejects_operations_botocore_does_not_know() -> None:
    with pytest.raises(ValueError):
        ApiServices().register("CreateTrainingJobs", describe_job)


def test_paginator_over_a_keyset_handler(services, serve_app) -> None:
    names = [f"job-{i:02d}" for i in range(25)]

    def list_jobs(params: dict, ctx: RequestContext) -> dict:
        page, token = keyset_page(names, lambda n: (n,), token=params.get("NextToken"),
                                  limit=params.get("MaxResults", 10), kind="ListTrainingJobs")
        return {"TrainingJobSummaries": [{"TrainingJobName": n, "TrainingJobArn": ctx.arn("training-job", n),
                                          "CreationTime": T0, "TrainingJobStatus": "Completed"} for n in page],
                "NextToken": token}

    services.register("ListTrainingJobs", list_jobs)
    sm = serve_app(services).client("sagemaker")
    pages = sm.get_paginator("list_training_jobs").paginate(PaginationConfig={"PageSize": 10})
    assert [s["TrainingJobName"] for s in pages.build_full_result()["TrainingJobSummaries"]] == names
    with pytest.raises(ClientError) as excinfo:
        sm.list_training_jobs(NextToken="garbage")
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"


def test_lifecycle_hooks_run(serve_app) -> None:
    calls = []

    async def start_async() -> None:
        calls.append("async-start")

    services = ApiServices(on_startup=[lambda: calls.append("start"), start_async],
                           on_shutdown=[lambda: calls.append("stop")])
    server = serve_app(services)
    assert calls == ["start", "async-start"]
    assert server.http().get("/ping").json()["status"] == "Healthy"
    server.stop()
    assert calls[-1] == "stop"


@pytest.mark.parametrize(("headers", "body", "code"), [
    ({"X-Amz-Target": "SageMaker.DescribeTrainingJob"}, b"[1,", "SerializationException"),
    ({"X-Amz-Target": "SageMaker.DescribeTrainingJob"}, b'{"TrainingJobName": NaN}', "SerializationException"),
    ({"X-Amz-Target": "SageMaker.DescribeTrainingJob"}, b"\xff\xfe", "SerializationException"),
    ({"X-Amz-Target": "SageMaker.NoSuchThing"}, b"{}", "UnknownOperationException"),
    ({"X-Amz-Target": "DynamoDB_20120810.ListTables"}, b"{}", "UnknownOperationException"),
    ({}, b"{}", "UnknownOperationException"),
    ({"X-Amz-Target": "SageMaker.DescribeTrainingJob"}, b"", "ValidationException"),
])
def test_protocol_errors(serve_app, services, headers, body, code) -> None:
    response = serve_app(services).http().post("/", content=body, headers=headers)
    assert (response.status_code, response.json()["__type"]) == (400, code)
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-requestid"]


def test_request_ids_are_unique(serve_app, services) -> None:
    client = serve_app(services).http()
    ids = {client.get("/ping").headers["x-amzn-RequestId"] for _ in range(5)}
    assert len(ids) == 5


class Runtime:
    def __init__(self) -> None:
        self.seen: list[InvokeRequest] = []

    async def __call__(self, request: InvokeRequest, ctx: RequestContext) -> InvokeResponse:
        self.seen.append(request)
        if request.endpoint_name == "missing":
            raise ApiError.endpoint_not_found(request.endpoint_name, ctx.account)
        if request.endpoint_name == "broken":
            raise ApiError.model_error("Received client error (400) from primary", 400, "bad input",
                                       ctx.arn("log-stream", "x"))
        if request.endpoint_name == "streaming":
            return InvokeResponse(body=iter([b"chunk-1,", b"chunk-2"]), content_type="text/csv")
        return InvokeResponse(body=b'{"echo": %d}' % len(request.body), content_type="application/json",
                              invoked_production_variant="AllTraffic",
                              custom_attributes=request.custom_attributes)


def test_runtime_handler_round_trip(serve_app) -> None:
    runtime = Runtime()
    server = serve_app(ApiServices(account="123456789012", runtime_handler=runtime))
    client = server.client("sagemaker-runtime")
    answer = client.invoke_endpoint(EndpointName="ep-1", Body=b"1,2,3", ContentType="text/csv",
                                    Accept="application/json", CustomAttributes="trace=1", TargetVariant="blue")
    assert answer["Body"].read() == b'{"echo": 5}'
    assert answer["ContentType"] == "application/json"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "trace=1"
    seen = runtime.seen[-1]
    assert (seen.content_type, seen.accept, seen.target_variant) == ("text/csv", "application/json", "blue")

    client.invoke_endpoint(EndpointName="ep-1", Body=b"x")
    assert runtime.seen[-1].content_type is None and runtime.seen[-1].accept is None  # boto3 sent no header

    streamed = client.invoke_endpoint(EndpointName="streaming", Body=b"{}")
    assert (streamed["Body"].read(), streamed["ContentType"]) == (b"chunk-1,chunk-2", "text/csv")

    with pytest.raises(client.exceptions.ModelError) as excinfo:
        client.invoke_endpoint(EndpointName="broken", Body=b"{}")
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert (response["OriginalStatusCode"], response["OriginalMessage"]) == (400, "bad input")

    with pytest.raises(ClientError) as excinfo:
        client.invoke_endpoint(EndpointName="missing", Body=b"{}")
    assert excinfo.value.response["Error"] == {
        "Code": "ValidationError", "Message": "Endpoint missing of account 123456789012 not found."}
