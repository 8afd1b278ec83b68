"""`forklift k8s render`'s route: a resource's Kubernetes objects as multi-document YAML.

    GET /_forklift/kubernetes/training-jobs/{TrainingJobName}
    GET /_forklift/kubernetes/endpoints/{EndpointName}

forklift's own routes live under `/_forklift/`, a path no AWS protocol uses, as plain HTTP: an
awsJson operation botocore's model lacks would fail its validation. The request is authenticated as
every other one (`services.authenticate`: SigV4 once a key exists), its name checked against the
model of the Describe operation it stands for, and authorized as that operation
(`sagemaker:DescribeTrainingJob` on the job's ARN, `sagemaker:DescribeEndpoint` on the endpoint's),
since it reveals the same facts. Errors are rest-json (`x-amzn-ErrorType`, `{"Message": …}`); an
unknown resource is a 404 that names it. The YAML never holds a credential: `services.manifests`
redacts every Secret's data.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forklift.api.authz import authorize
from forklift.api.awsjson import read_body
from forklift.api.context import build_context
from forklift.api.errors import ApiError
from forklift.api.protocol import rest_error
from forklift.api.services import ApiServices, Manifests, call
from forklift.api.validation import validate
from forklift.control.errors import ControlError, JobNotFound
from forklift.control.inference.errors import NotFound

PREFIX = "/_forklift/kubernetes"
YAML = "application/yaml"
MAX_BODY = 1024  # a GET carries no body; whatever one sends is only hashed for its signature

Render = Callable[[Manifests, str], str]


def kube_routes(services: ApiServices) -> list[Route]:
    """The routes of `services` under `PREFIX`."""

    def route(plural: str, operation: str, member: str, render: Render) -> Route:
        async def handler(request: Request) -> Response:
            try:
                text = await _render(services, request, operation, member, render)
            except ApiError as error:
                return rest_error(error)
            return Response(text, 200, media_type=YAML)
        return Route(f"{PREFIX}/{plural}/{{name}}", handler, methods=["GET"])

    return [route("training-jobs", "DescribeTrainingJob", "TrainingJobName", lambda m, name: m.training_job(name)),
            route("endpoints", "DescribeEndpoint", "EndpointName", lambda m, name: m.endpoint(name))]


async def _render(services: ApiServices, request: Request, operation: str, member: str, render: Render) -> str:
    body = await read_body(request, MAX_BODY)
    principal = services.authenticate(request.scope, body) if services.authenticate is not None else None
    params = validate("sagemaker", operation, {member: request.path_params["name"]},
                      error_code="ValidationException")
    ctx = build_context(request.state.request_id, request.headers, request.query_params, services.region,
                        services.account, operation, principal)
    authorize(ctx, "sagemaker", operation, params)
    if services.manifests is None:
        raise ApiError("UnknownOperationException", "This server renders no Kubernetes objects.", 404)
    try:
        text: str = await call(render, services.manifests, params[member])
    except (JobNotFound, NotFound) as exc:
        raise ApiError("ResourceNotFound", str(exc), 404) from None
    except ControlError as exc:
        raise ApiError.validation(str(exc)) from None
    return text
