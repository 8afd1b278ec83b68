"""The operation → (action, resource) rules `api.authz` derives from botocore's models, and the compiled
policies it decides with (which must decide as `credentials.policy.evaluate` does)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.api.authz import named_member, rule_for
from forklift.api.validation import service_model
from forklift.credentials.policy import compile_policy, evaluate, validate_policy

REGION, ACCOUNT = "eu-west-1", "123456789012"


@pytest.mark.parametrize(("service", "operation", "params", "action", "resource"), [
    ("sagemaker", "CreateTrainingJob", {"TrainingJobName": "Job-1"}, "sagemaker:CreateTrainingJob",
     f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/job-1"),
    ("sagemaker", "CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c"}, "sagemaker:CreateEndpoint",
     f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e"),
    ("sagemaker", "DeleteEndpointConfig", {"EndpointConfigName": "c"}, "sagemaker:DeleteEndpointConfig",
     f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/c"),
    ("sagemaker", "DescribeModel", {"ModelName": "m"}, "sagemaker:DescribeModel",
     f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m"),
    ("sagemaker", "ListTrainingJobs", {}, "sagemaker:ListTrainingJobs", "*"),
    ("sagemaker", "AddTags", {"ResourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m", "Tags": []},
     "sagemaker:AddTags", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m"),
    ("sagemaker", "DeleteTags", {"ResourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e", "TagKeys": []},
     "sagemaker:DeleteTags", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e"),
    # the tag handlers act on the ARN lower-cased: a policy must be asked about that one, or a Deny on
    # `model/secret` would not hold against `model/Secret`
    ("sagemaker", "AddTags", {"ResourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/Secret", "Tags": []},
     "sagemaker:AddTags", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/secret"),
    ("sagemaker", "ListTags", {"ResourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:Endpoint/E"},
     "sagemaker:ListTags", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e"),
    ("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "e", "Body": b""}, "sagemaker:InvokeEndpoint",
     f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e"),
    ("logs", "GetLogEvents", {"logGroupName": "/aws/x", "logStreamName": "s"}, "logs:GetLogEvents",
     f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/x"),
    ("logs", "GetLogEvents", {"logGroupIdentifier": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/g:*"},
     "logs:GetLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/g"),
    ("logs", "DescribeLogGroups", {}, "logs:DescribeLogGroups", "*"),
])
def test_the_action_and_resource_of_an_operation(service, operation, params, action, resource):
    rule = rule_for(service, operation)
    assert (rule.action, rule.resource(params, REGION, ACCOUNT)) == (action, resource)


def test_a_create_that_can_tag_needs_add_tags_too():
    assert all(rule_for("sagemaker", op).tagging for op in ("CreateTrainingJob", "CreateModel",
                                                              "CreateEndpointConfig", "CreateEndpoint"))
    assert not rule_for("sagemaker", "AddTags").tagging and not rule_for("sagemaker", "UpdateEndpoint").tagging


def test_roles_passed_are_read_from_the_model():
    assert rule_for("sagemaker", "CreateTrainingJob").roles == ("RoleArn",)
    assert rule_for("sagemaker", "CreateModel").roles == ("ExecutionRoleArn",)
    assert rule_for("sagemaker", "DescribeTrainingJob").roles == ()


@pytest.mark.parametrize("service", ["sagemaker", "logs"])
def test_every_modelled_operation_has_a_rule(service):
    model = service_model(service)
    for operation in model.operation_names:
        shape = model.operation_model(operation).input_shape
        rule = rule_for(service, operation)
        assert rule.action == f"{model.signing_name}:{operation}"
        params = {m: "Thing" for m in (shape.members if shape else {})}
        resource = rule.resource(params, REGION, ACCOUNT)
        member = named_member(operation, list(shape.required_members)) if shape else None
        if service == "sagemaker" and member:
            assert resource.startswith(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:") and resource.endswith("/thing")


_PIECE = st.sampled_from(["sagemaker", ":", "Describe", "Create", "logs", "*", "?", "a", "A", "/", ".", "-"])
_PATTERN = st.lists(_PIECE, min_size=1, max_size=6).map("".join)
_VALUE = st.lists(st.sampled_from(["sagemaker", ":", "Describe", "create", "logs", "a", "/", ".", "-", "x"]),
                  max_size=8).map("".join)
_STATEMENT = st.builds(
    lambda effect, action_key, actions, resource_key, resources: {
        "Effect": effect, action_key: actions, resource_key: resources},
    st.sampled_from(["Allow", "Deny"]), st.sampled_from(["Action", "NotAction"]),
    st.lists(_PATTERN, min_size=1, max_size=3), st.sampled_from(["Resource", "NotResource"]),
    st.lists(_PATTERN, min_size=1, max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(_STATEMENT, min_size=1, max_size=3), _VALUE, _VALUE)
def test_a_compiled_policy_decides_as_evaluate_does(statements, action, resource):
    document = {"Statement": statements}
    assert compile_policy(document).decide(action, resource) == evaluate([validate_policy(document)], action, resource)
