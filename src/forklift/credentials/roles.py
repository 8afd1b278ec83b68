"""Execution roles and whether they may invoke a credentials-provider function.

    forklift roles put SageMakerExecutionRole --policy policy.json [--managed-policy AmazonSageMakerFullAccess]

With no role defined (the embedded default), any role ARN — or none — may invoke any function. Once a
role is defined, the job's `RoleArn` / model's `ExecutionRoleArn` must name a defined role whose
policies allow `lambda:InvokeFunction` on the function's ARN; otherwise AccessDeniedByRole (the API
turns it into a ValidationException).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from forklift.config import Settings
from forklift.credentials.arns import check_role_name, parse_role_arn, role_arn
from forklift.credentials.errors import AccessDeniedByRole, InvalidPolicy, RoleNotFound
from forklift.credentials.models import RoleRow, sessions_for
from forklift.credentials.policy import (
    INVOKE_FUNCTION,
    MANAGED_POLICIES,
    Decision,
    PolicyDocument,
    evaluate,
    managed_policy_name,
    validate_policy,
)


class RoleDescription(TypedDict):
    """IAM's Role shape, as much of it as forklift keeps."""

    RoleName: str
    Arn: str
    PolicyDocument: PolicyDocument | None
    AttachedManagedPolicies: list[str]
    CreateDate: str


@dataclass(frozen=True)
class RoleInfo:
    name: str
    arn: str
    policy: PolicyDocument | None
    managed: list[str] = field(default_factory=list)
    created_at: float = 0.0

    def documents(self) -> list[PolicyDocument]:
        return ([self.policy] if self.policy else []) + [MANAGED_POLICIES[m] for m in self.managed]

    def describe(self) -> RoleDescription:
        return {"RoleName": self.name, "Arn": self.arn, "PolicyDocument": self.policy,
                "AttachedManagedPolicies": self.managed,
                "CreateDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at))}


class RoleStore:
    def __init__(self, settings: Settings, *, sessions: sessionmaker[Session] | None = None):
        self.settings = settings
        self._sessions = sessions or sessions_for(settings)

    def arn(self, name: str) -> str:
        return role_arn(name, self.settings.account)

    def name_of(self, name_or_arn: str) -> str:
        if not name_or_arn.startswith("arn:"):
            return check_role_name(name_or_arn)
        arn = parse_role_arn(name_or_arn)
        if arn.account != self.settings.account:
            raise RoleNotFound(f"role ARN {name_or_arn} names account {arn.account}, but this forklift is account "
                               f"{self.settings.account}: expected {self.arn(arn.name)}")
        return arn.name

    def put(self, name: str, policy: str | Mapping[str, object] | None = None,
            managed: list[str] | tuple[str, ...] = ()) -> RoleInfo:
        """Create or replace a role with an inline policy and/or managed policies."""
        check_role_name(name)
        document = validate_policy(policy) if policy is not None else None
        names = sorted({managed_policy_name(m) for m in managed})
        if document is None and not names:
            raise InvalidPolicy(f"role {name} needs a policy document or a managed policy")
        with self._sessions.begin() as session:
            row = session.get(RoleRow, name)
            if row is None:
                row = RoleRow(name=name, created_at=time.time())
                session.add(row)
            row.policy = json.dumps(document) if document is not None else None
            row.managed = json.dumps(names)
        return self._info(row)

    def get(self, name_or_arn: str) -> RoleInfo:
        name = self.name_of(name_or_arn)
        with self._sessions() as session:
            row = session.get(RoleRow, name)
        if row is None:
            raise RoleNotFound(f"role {self.arn(name)} is not defined; define it with `forklift roles put {name} "
                               "--policy FILE.json`")
        return self._info(row)

    def list(self) -> list[RoleInfo]:
        with self._sessions() as session:
            return [self._info(r) for r in session.scalars(select(RoleRow).order_by(RoleRow.name))]

    def delete(self, name_or_arn: str) -> RoleInfo:
        info = self.get(name_or_arn)
        with self._sessions.begin() as session:
            row = session.get(RoleRow, info.name)
            if row is not None:
                session.delete(row)
        return info

    def any_defined(self) -> bool:
        with self._sessions() as session:
            return bool(session.scalar(select(func.count()).select_from(RoleRow)))

    def check_invoke(self, role: str | None, function_arn: str) -> None:
        """Raise AccessDeniedByRole unless `role` may invoke `function_arn` (always allowed with no roles)."""
        if not self.any_defined():
            return
        if not role:
            raise RoleNotFound(f"an execution role is required to invoke {function_arn}: roles are defined, "
                               "so the job's RoleArn or the model's ExecutionRoleArn must name one")
        info = self.get(role)
        decision = evaluate(info.documents(), INVOKE_FUNCTION, function_arn)
        if decision is not Decision.ALLOW:
            why = "a Deny statement forbids it" if decision is Decision.EXPLICIT_DENY else "no statement allows it"
            raise AccessDeniedByRole(
                f"execution role {info.arn} is not authorized to perform {INVOKE_FUNCTION} on {function_arn}: {why}")

    def _info(self, row: RoleRow) -> RoleInfo:
        return RoleInfo(row.name, self.arn(row.name), json.loads(row.policy) if row.policy else None,
                        json.loads(row.managed or "[]"), row.created_at)
