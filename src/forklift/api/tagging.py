"""SageMaker's AddTags, ListTags and DeleteTags mapped onto `forklift.control.tags.TagStore`.

A ResourceArn is looked up lower-cased, as SageMaker writes names in ARNs. An ARN this server has no
resource for is a ValidationException (the operations model no other error), too many tags
ResourceLimitExceeded.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.services import ApiServices
from forklift.api.tokens import decode_token, encode_token
from forklift.control.errors import ControlError
from forklift.control.tags import TagStore, TooManyTags

DEFAULT_PAGE = 50  # botocore's model has MaxResults at least 50, and a resource holds at most 50 tags
_TOKEN_KIND = "ListTags"


def _aws_errors(handler: Callable[[dict, RequestContext], dict]) -> Callable[[dict, RequestContext], dict]:
    @wraps(handler)
    def wrapped(params: dict, ctx: RequestContext) -> dict:
        try:
            return handler(params, ctx)
        except TooManyTags as exc:
            raise ApiError.resource_limit_exceeded(str(exc)) from None
        except ControlError as exc:
            raise ApiError.validation(str(exc)) from None
    return wrapped


def install(services: ApiServices, tags: TagStore) -> None:
    @services.sagemaker("AddTags")
    @_aws_errors
    def add_tags(params: dict, ctx: RequestContext) -> dict:
        tags.add(params["ResourceArn"].lower(), params["Tags"])
        return {"Tags": params["Tags"]}

    @services.sagemaker("ListTags")
    @_aws_errors
    def list_tags(params: dict, ctx: RequestContext) -> dict:
        arn = params["ResourceArn"].lower()
        # the token is bound to its resource: another resource's token would resume at a foreign position
        kind = f"{_TOKEN_KIND}:{arn}"
        after = None
        if params.get("NextToken"):
            position = decode_token(params["NextToken"], kind)
            if len(position) != 1 or type(position[0]) is not int:
                raise ApiError.validation("Invalid pagination token: the NextToken was not produced by this listing.")
            after = position[0]
        page, last = tags.list(arn, after, int(params.get("MaxResults") or DEFAULT_PAGE))
        body: dict = {"Tags": page}
        if last is not None:
            body["NextToken"] = encode_token((last,), kind)
        return body

    @services.sagemaker("DeleteTags")
    @_aws_errors
    def delete_tags(params: dict, ctx: RequestContext) -> dict:
        tags.delete(params["ResourceArn"].lower(), params["TagKeys"])
        return {}
