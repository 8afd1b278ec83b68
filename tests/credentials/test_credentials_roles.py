"""Execution roles: IAM-style policy evaluation and the lambda:InvokeFunction check before a provider runs."""

from __future__ import annotations

import json

import pytest

from forklift.credentials.chain import check_provider, default_keychain
from forklift.credentials.errors import AccessDeniedByRole, InvalidPolicy, RoleNotFound
from forklift.credentials.functions import FunctionRegistry
from forklift.credentials.policy import Decision, evaluate, validate_policy
from forklift.credentials.roles import RoleStore

FN = "arn:aws:lambda:us-east-1:000000000000:function:{}"
ROLE = "arn:aws:iam::000000000000:role/{}"

DOC_ALLOW_MY = {  # SageMaker's documented example, for a function named myLambdaFunction
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                   "Resource": ["arn:aws:lambda:*:*:function:*myLambdaFunction*"]}],
}


def test_policy_wildcards_and_deny_override():
    assert evaluate([DOC_ALLOW_MY], "lambda:InvokeFunction", FN.format("team-myLambdaFunction-v2")) is Decision.ALLOW
    assert evaluate([DOC_ALLOW_MY], "lambda:invokefunction", FN.format("myLambdaFunction")) is Decision.ALLOW
    assert evaluate([DOC_ALLOW_MY], "lambda:InvokeFunction", FN.format("mylambdafunction")) is Decision.IMPLICIT_DENY
    assert evaluate([DOC_ALLOW_MY], "lambda:GetFunction", FN.format("myLambdaFunction")) is Decision.IMPLICIT_DENY
    everything = {"Statement": {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}}
    deny_prod = {"Statement": [{"Effect": "Deny", "Action": "lambda:Invoke?unction", "Resource": FN.format("prod-*")}]}
    assert evaluate([everything], "lambda:InvokeFunction", FN.format("prod-1")) is Decision.ALLOW
    assert evaluate([everything, deny_prod], "lambda:InvokeFunction", FN.format("prod-1")) is Decision.EXPLICIT_DENY
    assert evaluate([everything, deny_prod], "lambda:InvokeFunction", FN.format("dev-1")) is Decision.ALLOW
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "NotResource": FN.format("secret*")}]}
    assert evaluate([not_action], "lambda:InvokeFunction", FN.format("open")) is Decision.ALLOW
    assert evaluate([not_action], "lambda:InvokeFunction", FN.format("secret-x")) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize("document, message", [
    ("{not json", "not valid JSON"),
    ({"Version": "2012-10-17"}, "no Statement"),
    ({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}, "Effect"),
    ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "exactly one of Action and NotAction"),
    ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": []}]}, "non-empty"),
    ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                     "Condition": {"StringEquals": {"aws:username": "x"}}}]}, "Condition"),
])
def test_invalid_policies_are_refused(document, message):
    with pytest.raises(InvalidPolicy, match=message):
        validate_policy(document)


def test_no_roles_defined_means_any_role_may_invoke(settings):
    roles = RoleStore(settings)
    roles.check_invoke(None, FN.format("anything"))
    roles.check_invoke(ROLE.format("whatever"), FN.format("anything"))


def test_role_policy_allows_and_denies(settings, make_handler):
    functions = FunctionRegistry(settings)
    path = make_handler("p.py", 'return {"Credentials": {"Username": "u", "Password": "p"}}')
    allowed = functions.register("myLambdaFunction", handler=path).arn
    other = functions.register("unrelated", handler=path).arn
    roles = RoleStore(settings)
    assert roles.put("SageMakerExecutionRole", json.dumps(DOC_ALLOW_MY)).arn == ROLE.format("SageMakerExecutionRole")

    assert check_provider(settings, allowed, ROLE.format("SageMakerExecutionRole")) == allowed
    default_keychain(settings, function_arn=allowed, role_arn=ROLE.format("SageMakerExecutionRole"))
    with pytest.raises(AccessDeniedByRole) as info:
        default_keychain(settings, function_arn=other, role_arn=ROLE.format("SageMakerExecutionRole"))
    message = str(info.value)
    assert ROLE.format("SageMakerExecutionRole") in message and other in message and "lambda:InvokeFunction" in message
    with pytest.raises(RoleNotFound, match="is not defined"):
        check_provider(settings, allowed, ROLE.format("Nobody"))
    with pytest.raises(RoleNotFound, match="an execution role is required"):
        check_provider(settings, allowed, None)
    with pytest.raises(RoleNotFound, match="expected arn:aws:iam::000000000000:role/SageMakerExecutionRole"):
        check_provider(settings, allowed, "arn:aws:iam::111111111111:role/SageMakerExecutionRole")
    # role paths are allowed in ARNs; the name is what counts
    assert check_provider(settings, allowed, "arn:aws:iam::000000000000:role/service-role/SageMakerExecutionRole")


def test_managed_sagemaker_full_access_allows_functions_named_sagemaker(settings, make_handler):
    functions = FunctionRegistry(settings)
    path = make_handler("p.py", 'return {"Credentials": {"Username": "u", "Password": "p"}}')
    named = functions.register("SageMaker-registry-creds", handler=path).arn
    lower = functions.register("team-sagemaker-creds", handler=path).arn
    plain = functions.register("registry-creds", handler=path).arn
    RoleStore(settings).put("Full", managed=["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"])
    check_provider(settings, named, ROLE.format("Full"))
    check_provider(settings, lower, ROLE.format("Full"))
    with pytest.raises(AccessDeniedByRole):
        check_provider(settings, plain, ROLE.format("Full"))
    with pytest.raises(InvalidPolicy, match="unknown managed policy"):
        RoleStore(settings).put("Other", managed=["AdministratorAccess"])


def test_roles_cli(cli, home, tmp_path, make_handler):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(DOC_ALLOW_MY))
    path = make_handler("p.py", 'return {"Credentials": {"Username": "u", "Password": "p"}}')
    cli("functions", "register", "myLambdaFunction", "--handler", str(path))
    cli("functions", "register", "other", "--handler", str(path))
    assert cli("roles", "put", "Exec", "--policy", str(policy)).stdout.strip() == ROLE.format("Exec")
    cli("roles", "put", "Full", "--managed-policy", "AmazonSageMakerFullAccess")
    assert ROLE.format("Exec") in cli("roles", "list").stdout
    shown = json.loads(cli("roles", "show", ROLE.format("Exec")).stdout)
    assert shown["PolicyDocument"]["Statement"][0]["Action"] == ["lambda:InvokeFunction"]
    assert "allowed" in cli("roles", "check", ROLE.format("Exec"), "myLambdaFunction").stdout
    denied = cli("roles", "check", ROLE.format("Exec"), "other", check=False)
    assert denied.returncode == 1 and "is not authorized to perform lambda:InvokeFunction" in denied.stderr
    assert "Traceback" not in denied.stderr
    cli("roles", "delete", "Exec")
    cli("roles", "delete", "Full")
    assert cli("roles", "list").stdout.strip() == ""
