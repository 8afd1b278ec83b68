"""What a signed request may do: its key's IAM-style policy, asked once the request is authenticated.

    authorize(ctx, "sagemaker", "CreateTrainingJob", params)   # ApiError AccessDeniedException, or None

The action is `<service's signing name>:<Operation>` (`sagemaker:CreateTrainingJob`, `logs:GetLogEvents`,
`sagemaker:InvokeEndpoint`). The resource is the ARN of what the request names, read generically from
botocore's model rather than listed per operation:

- SageMaker (and sagemaker-runtime): the required `<Noun>Name` member whose noun the operation is about
  (`CreateEndpoint` names `EndpointName`, not its `EndpointConfigName`), else the only required one, as
  `arn:aws:sagemaker:REGION:ACCOUNT:<noun in kebab case>/<name>`; a required `ResourceArn` (AddTags) as
  given; `*` where none is required (List*).
  A request that also requires another of forklift's resources by name (CreateEndpoint and UpdateEndpoint
  name an `EndpointConfigName`) needs the action on that one's ARN too, as on AWS: a key scoped to its
  own endpoints cannot deploy someone else's endpoint configuration.
- CloudWatch (metrics): `cloudwatch:<Operation>` on `*`, as IAM names them (the requests are signed for
  `monitoring`).
- CloudWatch Logs: `logGroupName` / `logGroupIdentifier` as `arn:aws:logs:REGION:ACCOUNT:log-group:NAME`,
  with this server's region and account whatever an identifier ARN says (the handlers read only its name).

As on AWS, a Create* that gives `Tags` needs `sagemaker:AddTags` on the new resource's ARN too, and passing a
role needs `iam:PassRole` on it: every top-level `…RoleArn` member a SageMaker request
sets (CreateTrainingJob's `RoleArn`, CreateModel's `ExecutionRoleArn`). forklift's roles have no path (a
role is known by its name), so PassRole is checked on `arn:aws:iam::ACCOUNT:role/NAME` whatever path the
request writes. A request under the embedded default (no key exists) or signed by a key without a policy is
allowed without a look at any of this.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.protocol import arn, log_group_arn, log_group_name
from forklift.api.s3errors import S3Error
from forklift.api.sigv4 import Principal
from forklift.api.validation import operation_model, service_model
from forklift.credentials.arns import parse_role_arn, role_arn
from forklift.credentials.errors import InvalidArn
from forklift.credentials.policy import CompiledPolicy, Decision
from forklift.credentials.reserved import EXPERIMENT_TAG, RUN_TAG

PASS_ROLE = "iam:PassRole"
ADD_TAGS = "sagemaker:AddTags"
RESERVED_TAGS = (EXPERIMENT_TAG, RUN_TAG)
# IAM's prefix where it is not the signing name (CloudWatch signs as `monitoring`)
IAM_PREFIX = {"cloudwatch": "cloudwatch"}
LOG_GROUP_MEMBERS = ("logGroupName", "logGroupIdentifier")
# The resources forklift serves that a request may require besides the one it is about.
REFERENCED_MEMBERS = ("EndpointConfigName", "ModelName", "EndpointName", "TrainingJobName")
_VERB = re.compile(r"^[A-Z][a-z]+")
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

Resource = Callable[[Mapping[str, Any], str, str], str]  # (params, region, account) -> the resource's ARN


@dataclass(frozen=True)
class Rule:
    """How one operation is authorized: its action, its resource, the members that pass a role."""

    action: str
    resource: Resource
    roles: tuple[str, ...] = ()
    referenced: tuple[Resource, ...] = ()  # other resources the request requires by name
    tagging: bool = False  # a Create* whose `Tags` also need sagemaker:AddTags on the new resource


def _everything(params: Mapping[str, Any], region: str, account: str) -> str:
    return "*"


def _kebab(noun: str) -> str:
    return _WORD.sub("-", noun).lower()


def _sagemaker_resource(member: str) -> Resource:
    resource_type = _kebab(member.removesuffix("Name"))

    def resource(params: Mapping[str, Any], region: str, account: str) -> str:
        value = params.get(member)
        if not isinstance(value, str) or not value:
            return "*"
        return value if value.startswith("arn:") else arn(resource_type, value, region, account)
    return resource


def _given_arn(params: Mapping[str, Any], region: str, account: str) -> str:
    """The ResourceArn as the handlers look it up (`api.tagging`: lower-cased, as SageMaker writes its ARNs),
    so a policy naming a resource holds whatever case the request spells it in."""
    value = params.get("ResourceArn")
    return value.lower() if isinstance(value, str) and value else "*"


def _log_group(params: Mapping[str, Any], region: str, account: str) -> str:
    for member in LOG_GROUP_MEMBERS:
        value = params.get(member)
        if isinstance(value, str) and value:
            # only the group's name reaches the handlers, so that is what is authorized, as this server's
            return log_group_arn(log_group_name(value), region, account)
    return "*"


def named_member(operation: str, required: list[str]) -> str | None:
    """The required `<Noun>Name` member that names the resource `operation` acts on, if any.

    The noun the operation names after its verb picks among several (the longest that starts it);
    an operation about something else (ListTrainingJobsForHyperParameterTuningJob) is scoped to the
    one resource it requires.
    """
    names = [m for m in required if m.endswith("Name") and len(m) > len("Name")]
    noun = _VERB.sub("", operation, count=1)
    about = [m for m in names if noun.startswith(m.removesuffix("Name"))]
    if about:
        return max(about, key=len)
    return names[0] if len(names) == 1 else None


@functools.lru_cache(maxsize=2048)
def rule_for(service: str, operation: str) -> Rule:
    """The rule of a modelled operation of `service` (a botocore service name)."""
    model = operation_model(service, operation)
    if model is None:
        raise ValueError(f"{operation!r} is not an operation of botocore's {service} model")
    action = f"{IAM_PREFIX.get(service, service_model(service).signing_name)}:{operation}"
    shape = model.input_shape
    if shape is None or service == "cloudwatch":  # CloudWatch's metric actions have no resource but `*`
        return Rule(action, _everything)
    if service == "logs":
        named = any(m in shape.members for m in LOG_GROUP_MEMBERS)
        return Rule(action, _log_group if named else _everything)
    member = named_member(operation, list(shape.required_members))
    roles = tuple(m for m, s in shape.members.items() if m.endswith("RoleArn") and s.type_name == "string")
    if member:
        referenced = tuple(_sagemaker_resource(m) for m in REFERENCED_MEMBERS
                           if m != member and m in shape.required_members)
        tagging = operation.startswith("Create") and "Tags" in shape.members
        return Rule(action, _sagemaker_resource(member), roles, referenced, tagging)
    return Rule(action, _given_arn if "ResourceArn" in shape.required_members else _everything, roles)


def denied(principal_arn: str, action: str, resource: str, decision: Decision) -> ApiError:
    """AWS's AccessDeniedException, in its words."""
    why = ("with an explicit deny in an identity-based policy" if decision is Decision.EXPLICIT_DENY
           else f"because no identity-based policy allows the {action} action")
    return ApiError("AccessDeniedException",
                    f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {why}")


def _check(policy: CompiledPolicy, ctx: RequestContext, action: str, resource: str) -> None:
    decision = policy.decide(action, resource)
    if decision is not Decision.ALLOW:
        raise denied(ctx.caller, action, resource, decision)


def authorize(ctx: RequestContext, service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Refuse (AccessDeniedException) what the signing key's policy does not allow; None when allowed."""
    principal = ctx.principal
    if principal is None or principal.policy is None:
        return
    rule = rule_for(service, operation)
    resource = rule.resource(params, ctx.region, ctx.account)
    _check(principal.policy, ctx, rule.action, resource)
    if rule.tagging and _user_tags(params.get("Tags")):
        _check(principal.policy, ctx, ADD_TAGS, resource)
    for referenced in rule.referenced:
        _check(principal.policy, ctx, rule.action, referenced(params, ctx.region, ctx.account))
    for member in rule.roles:
        role = params.get(member)
        if isinstance(role, str) and role:
            _check(principal.policy, ctx, PASS_ROLE, passed_role(role))


def _user_tags(tags: Any) -> list[Any]:
    """The tags a caller sets, less an experiment run's claim (forklift's own, which every run carries)."""
    return [tag for tag in tags or () if not (isinstance(tag, Mapping) and tag.get("Key") in RESERVED_TAGS)]


def passed_role(value: str) -> str:
    """The ARN of the role forklift will use for `value`: its roles are known by name, so without the path."""
    try:
        parsed = parse_role_arn(value)
    except InvalidArn:
        return value
    return role_arn(parsed.name, parsed.account, parsed.partition)


def s3_arn(bucket: str, key: str | None = None) -> str:
    """An S3 resource as IAM names it: `arn:aws:s3:::bucket` (ListBucket, …) or `arn:aws:s3:::bucket/key`."""
    if not bucket:
        return "*"
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


def authorize_s3(principal: Principal, account: str, action: str, resource: str) -> None:
    """Refuse, with S3's AccessDenied, what the signing key's policy does not allow (`s3:GetObject` on
    `arn:aws:s3:::bucket/key`, `s3:ListBucket` on `arn:aws:s3:::bucket`, `s3:ListAllMyBuckets` on `*`, …)."""
    if principal.policy is None:
        return
    decision = principal.policy.decide(action, resource)
    if decision is not Decision.ALLOW:
        why = denied(principal.arn(account), action, resource, decision).message
        raise S3Error("AccessDenied", why, 403)
