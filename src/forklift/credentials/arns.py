"""Lambda function and IAM role ARNs, as forklift's configured region and account spell them.

    arn:aws:lambda:<region>:<account>:function:<name>[:$LATEST]
    arn:aws:iam::<account>:role[/path/]<name>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forklift.credentials.errors import InvalidArn

# re.ASCII: AWS account ids and names are ASCII; a Unicode digit or letter (`\d`, `\w` by default) is not one.
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_FUNCTION_ARN = re.compile(
    r"^arn:(aws[a-z-]*):lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]{1,64})(?::([A-Za-z0-9_$-]+))?$",
    re.ASCII,
)
_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$", re.ASCII)


@dataclass(frozen=True)
class FunctionArn:
    partition: str
    region: str
    account: str
    name: str
    qualifier: str | None

    def __str__(self) -> str:
        return function_arn(self.name, self.region, self.account, self.partition)


@dataclass(frozen=True)
class RoleArn:
    partition: str
    account: str
    path: str
    name: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.path}{self.name}"


def function_arn(name: str, region: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:lambda:{region}:{account}:function:{name}"


def role_arn(name: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


def parse_function_arn(text: str) -> FunctionArn:
    m = _FUNCTION_ARN.match(text.strip())
    if not m:
        raise InvalidArn(f"{text!r} is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)")
    return FunctionArn(*m.groups())


def parse_role_arn(text: str) -> RoleArn:
    m = _ROLE_ARN.match(text.strip())
    if not m:
        raise InvalidArn(f"{text!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return RoleArn(*m.groups())


def check_function_name(name: str) -> str:
    if not FUNCTION_NAME.fullmatch(name):  # fullmatch: `$` alone lets a trailing newline through
        raise InvalidArn(f"invalid function name {name!r}: 1-64 letters, digits, '-' and '_'")
    return name


def check_role_name(name: str) -> str:
    if not ROLE_NAME.fullmatch(name):
        raise InvalidArn(f"invalid role name {name!r}: 1-64 letters, digits and '+=,.@_-'")
    return name
