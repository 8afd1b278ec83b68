"""Properties of ARN parsing and IAM-style policies: any text is an ARN or InvalidArn; any document is a
PolicyDocument or InvalidPolicy; a checked document always evaluates; an explicit Deny always wins; and
`*`/`?` mean what fnmatch means by them (whole string, `*` any run, `?` one character)."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from forklift.credentials.arns import (
    check_function_name,
    check_role_name,
    function_arn,
    parse_function_arn,
    parse_role_arn,
    role_arn,
)
from forklift.credentials.errors import InvalidArn, InvalidPolicy
from forklift.credentials.policy import Decision, evaluate, managed_policy_name, validate_policy

account = st.text("0123456789", min_size=12, max_size=12)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
region = st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1", "us-gov-west-1"])
function_name = st.text(_ALNUM + "_-", min_size=1, max_size=64)
role_name = st.text(_ALNUM + "_+=,.@-", min_size=1, max_size=64)


@given(function_name, region, account, st.sampled_from(["aws", "aws-cn", "aws-us-gov"]))
def test_a_function_arn_round_trips(name: str, where: str, owner: str, partition: str) -> None:
    arn = function_arn(name, where, owner, partition)
    parsed = parse_function_arn(arn)
    assert (parsed.name, parsed.region, parsed.account, parsed.partition) == (name, where, owner, partition)
    assert str(parsed) == arn and check_function_name(name) == name


@given(role_name, account, st.lists(role_name, max_size=2))
def test_a_role_arn_round_trips(name: str, owner: str, path: list[str]) -> None:
    arn = role_arn("".join(p + "/" for p in path) + name, owner)
    parsed = parse_role_arn(arn)
    assert (parsed.name, parsed.account, parsed.path) == (name, owner, "".join(p + "/" for p in path))
    assert str(parsed) == arn and check_role_name(name) == name


@given(st.text(max_size=100))
@example("arn:aws:iam::\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662:role/x")
@example("arn:aws:lambda:us-east-1:123456789012:function:f\n")
def test_any_text_is_an_arn_or_invalid_arn(text: str) -> None:
    for parse in (parse_function_arn, parse_role_arn):
        try:
            parsed = parse(text)
        except InvalidArn:
            continue
        assert parsed.account.isascii() and parsed.account.isdigit()
        assert parse(str(parsed)).name == parsed.name


@given(st.text(max_size=70))
@example("name\n")
@example("r\u00f4le")
def test_any_name_is_checked_or_refused(name: str) -> None:
    for check, allowed in ((check_function_name, r"[A-Za-z0-9_-]{1,64}"),
                           (check_role_name, r"[A-Za-z0-9_+=,.@-]{1,64}")):
        try:
            assert check(name) == name
        except InvalidArn:
            assert not re.fullmatch(allowed, name)
        else:
            assert re.fullmatch(allowed, name)


def test_unicode_digits_and_trailing_newlines_are_refused() -> None:
    # Regression examples of what the properties found: each was accepted.
    with pytest.raises(InvalidArn):
        parse_role_arn("arn:aws:iam::\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662:role/x")
    for check in (check_function_name, check_role_name):
        with pytest.raises(InvalidArn):
            check("name\n")


# -- policies ------------------------------------------------------------------------------------
policy_keys = st.sampled_from(["Version", "Statement", "Effect", "Action", "NotAction", "Resource", "NotResource",
                               "Condition", "Sid"]) | st.text(max_size=5)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(policy_keys, inner, max_size=5),
    max_leaves=25,
)
pattern = st.text(st.sampled_from("ab*?:"), min_size=1, max_size=6)
value = st.text(st.sampled_from("ab:\n"), max_size=6)
patterns = st.one_of(pattern, st.lists(pattern, min_size=1, max_size=3))
statement = st.fixed_dictionaries(
    {"Effect": st.sampled_from(["Allow", "Deny"])},
    optional={"Sid": st.text(max_size=4)},
).flatmap(lambda base: st.tuples(
    st.sampled_from(["Action", "NotAction"]), patterns, st.sampled_from(["Resource", "NotResource"]), patterns,
).map(lambda t: {**base, t[0]: t[1], t[2]: t[3]}))
documents = st.lists(statement, min_size=1, max_size=4).map(lambda s: {"Version": "2012-10-17", "Statement": s})


@given(json_values)
@example({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
@example({"Statement": [{"Effect": ["Allow"], "Action": "*", "Resource": "*"}]})
def test_any_document_is_a_policy_or_invalid_policy(document: object) -> None:
    for given_as in (document, json.dumps(document)):
        try:
            checked = validate_policy(given_as)  # type: ignore[arg-type]
        except InvalidPolicy:
            continue
        assert isinstance(checked["Statement"], list) and checked["Statement"]
        assert evaluate([checked], "lambda:InvokeFunction", "arn:aws:lambda:r:1:function:f") in Decision


@given(st.text(max_size=60))
@example("[" * 100_000)
@example('{"Statement": NaN}')
def test_any_policy_text_is_a_policy_or_invalid_policy(text: str) -> None:
    try:
        validate_policy(text)
    except InvalidPolicy:
        pass


@given(st.lists(documents, min_size=1, max_size=3), value, value)
def test_an_explicit_deny_always_wins(docs: list[dict], action: str, resource: str) -> None:
    checked = [validate_policy(d) for d in docs]
    decision = evaluate(checked, action, resource)
    with_deny = [*checked, validate_policy({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})]
    assert evaluate(with_deny, action, resource) is Decision.EXPLICIT_DENY
    allow_all = [validate_policy({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}), *checked]
    assert evaluate(allow_all, action, resource) is (
        Decision.EXPLICIT_DENY if decision is Decision.EXPLICIT_DENY else Decision.ALLOW)


@given(pattern, value)
@example("a", "a\n")
@example("a*", "a\nb")
def test_resource_wildcards_mean_what_fnmatch_means(resource_pattern: str, resource: str) -> None:
    document = validate_policy({"Statement": [{"Effect": "Allow", "Action": "x", "Resource": resource_pattern}]})
    allowed = evaluate([document], "x", resource) is Decision.ALLOW
    assert allowed == fnmatch.fnmatchcase(resource, resource_pattern)


@given(pattern, value)
def test_action_wildcards_ignore_case(action_pattern: str, action: str) -> None:
    document = validate_policy({"Statement": [{"Effect": "Allow", "Action": action_pattern.upper(), "Resource": "*"}]})
    allowed = evaluate([document], action, "r") is Decision.ALLOW
    assert allowed == fnmatch.fnmatchcase(action.lower(), action_pattern.lower())


@given(st.text(max_size=60))
def test_a_managed_policy_name_is_known_or_invalid_policy(text: str) -> None:
    try:
        assert managed_policy_name(text) == "AmazonSageMakerFullAccess"
    except InvalidPolicy:
        pass


def test_a_trailing_newline_does_not_match_a_pattern_without_one() -> None:
    # Regression example of what the properties found: `^a$` matched "a\n", so a resource with a
    # trailing newline was allowed by a policy naming the resource without one.
    document = validate_policy({"Statement": [{"Effect": "Allow", "Action": "x", "Resource": "arn:f"}]})
    assert evaluate([document], "x", "arn:f\n") is Decision.IMPLICIT_DENY
    with pytest.raises(InvalidPolicy):
        validate_policy("[" * 100_000)
