"""IAM-style policy evaluation, as much as credentials providers need.

A document is `{"Version": "2012-10-17", "Statement": [...]}` (a single statement object is allowed).
Each statement has `Effect` (`Allow`/`Deny`), `Action` or `NotAction`, `Resource` or `NotResource`
(strings or lists, with `*` and `?` wildcards; actions match case-insensitively). As in IAM, an explicit
Deny wins, then any Allow, else the request is implicitly denied. `Condition` cannot be evaluated here
(there is no request context), so documents with one are refused when stored rather than misread.

`compile_policy` turns a checked document into matchers built once (RE2, so a pattern's cost stays linear
in the value whatever wildcards it holds), for callers that decide per request (the API's access keys).

Managed policies are known by name; `AmazonSageMakerFullAccess` lets a role invoke Lambda functions with
SageMaker in their name, as SageMaker's documentation describes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import NotRequired, TypedDict, cast

import re2

from forklift.credentials.errors import InvalidPolicy

INVOKE_FUNCTION = "lambda:InvokeFunction"
_MANAGED_ARN = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")

# One statement of a checked document: Effect, Action or NotAction, Resource or NotResource (a string or a
# list of strings), perhaps a Sid.
Statement = dict[str, object]


class PolicyDocument(TypedDict):
    """A document as validate_policy returns it; other top-level keys are kept as they were."""

    Version: NotRequired[str]
    Id: NotRequired[str]
    Statement: list[Statement]


# Our own description of the documented behaviour, not a copy of AWS's policy text.
MANAGED_POLICIES: dict[str, PolicyDocument] = {
    "AmazonSageMakerFullAccess": {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": INVOKE_FUNCTION,
            "Resource": [f"arn:aws:lambda:*:*:function:*{spelling}*"
                         for spelling in ("SageMaker", "sagemaker", "Sagemaker")],
        }],
    },
}


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


def managed_policy_name(text: str) -> str:
    """A managed policy's name from its name or ARN; InvalidPolicy for one forklift does not know."""
    m = _MANAGED_ARN.match(text)
    name = m.group(1) if m else text
    if name not in MANAGED_POLICIES:
        raise InvalidPolicy(f"unknown managed policy {text!r} (known: {', '.join(sorted(MANAGED_POLICIES))})")
    return name


def _as_list(value: object, field: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise InvalidPolicy(f"{field} must be a non-empty string or list of strings")
    return values


def validate_policy(document: str | Mapping[str, object]) -> PolicyDocument:
    """Parse and check a policy document; returns it as a dict with `Statement` a list."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise InvalidPolicy(f"policy is not valid JSON: {exc}") from None
        except RecursionError:
            raise InvalidPolicy("policy nests deeper than a JSON parser follows") from None
    if not isinstance(document, dict):
        raise InvalidPolicy("policy must be a JSON object with a Statement")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise InvalidPolicy("policy has no Statement list")
    checked: list[Statement] = []
    for i, statement in enumerate(statements):
        where = f"Statement[{i}]"
        if not isinstance(statement, dict):
            raise InvalidPolicy(f"{where} is not an object")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise InvalidPolicy(f"{where}.Effect must be \"Allow\" or \"Deny\"")
        if "Condition" in statement:
            raise InvalidPolicy(f"{where} has a Condition, which forklift cannot evaluate")
        for a, b in (("Action", "NotAction"), ("Resource", "NotResource")):
            if (a in statement) == (b in statement):
                raise InvalidPolicy(f"{where} needs exactly one of {a} and {b}")
            key = a if a in statement else b
            _as_list(statement[key], f"{where}.{key}")
        checked.append(statement)
    # The checks above are what make it a PolicyDocument; a TypedDict cannot be built from ** of a plain dict.
    return cast(PolicyDocument, {**document, "Statement": checked})


@lru_cache(maxsize=1024)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _any_match(patterns: list[str], value: str, ignore_case: bool) -> bool:
    # fullmatch, not `^…$`: `$` also matches before a trailing newline, so "arn:…:x" would match "arn:…:x\n".
    return any(_pattern(p, ignore_case).fullmatch(value) for p in patterns)


def _applies(statement: Statement, action: str, resource: str) -> bool:
    if "Action" in statement:
        action_ok = _any_match(_as_list(statement["Action"], "Action"), action, True)
    else:
        action_ok = not _any_match(_as_list(statement["NotAction"], "NotAction"), action, True)
    if "Resource" in statement:
        resource_ok = _any_match(_as_list(statement["Resource"], "Resource"), resource, False)
    else:
        resource_ok = not _any_match(_as_list(statement["NotResource"], "NotResource"), resource, False)
    return action_ok and resource_ok


def evaluate(documents: list[PolicyDocument], action: str, resource: str) -> Decision:
    allowed = False
    for document in documents:
        for statement in validate_policy(document)["Statement"]:
            if _applies(statement, action, resource):
                if statement["Effect"] == "Deny":
                    return Decision.EXPLICIT_DENY
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


@dataclass(frozen=True)
class _CompiledStatement:
    deny: bool
    actions: re2._Regexp  # one alternation of the statement's Action (or NotAction) patterns
    actions_negated: bool
    resources: re2._Regexp
    resources_negated: bool

    def applies(self, action: str, resource: str) -> bool:
        return (bool(self.actions.fullmatch(action)) != self.actions_negated
                and bool(self.resources.fullmatch(resource)) != self.resources_negated)


def _alternation(patterns: list[str], ignore_case: bool) -> re2._Regexp:
    body = "|".join("".join(".*" if c == "*" else "." if c == "?" else re2.escape(c) for c in p) for p in patterns)
    return re2.compile(f"{'(?i)' if ignore_case else ''}(?s:{body})")


DECISIONS_CACHED = 4096  # (action, resource) pairs remembered per policy: RE2 from Python costs µs a match


@dataclass(frozen=True)
class CompiledPolicy:
    """A checked document ready to decide requests: `decide(action, resource)` as `evaluate` would."""

    document: PolicyDocument
    statements: tuple[_CompiledStatement, ...]
    decide: Callable[[str, str], Decision] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decide", lru_cache(maxsize=DECISIONS_CACHED)(self._decide))

    def _decide(self, action: str, resource: str) -> Decision:
        allowed = False
        for statement in self.statements:
            if statement.applies(action, resource):
                if statement.deny:
                    return Decision.EXPLICIT_DENY
                allowed = True
        return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def compile_policy(document: str | Mapping[str, object]) -> CompiledPolicy:
    """Check `document` (validate_policy's rules and errors) and build its matchers."""
    checked = validate_policy(document)
    statements = []
    for statement in checked["Statement"]:
        action_key = "Action" if "Action" in statement else "NotAction"
        resource_key = "Resource" if "Resource" in statement else "NotResource"
        statements.append(_CompiledStatement(
            deny=statement["Effect"] == "Deny",
            actions=_alternation(_as_list(statement[action_key], action_key), True),
            actions_negated=action_key == "NotAction",
            resources=_alternation(_as_list(statement[resource_key], resource_key), False),
            resources_negated=resource_key == "NotResource"))
    return CompiledPolicy(checked, tuple(statements))
