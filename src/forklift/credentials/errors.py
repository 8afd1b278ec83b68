"""What can go wrong while finding credentials. Messages name the source (function, ARN, role, helper),
never a secret value."""

from __future__ import annotations

from forklift.errors import ForkliftError


class CredentialsError(ForkliftError):
    """Credentials could not be found or produced; the message says which source and why."""


class InvalidArn(CredentialsError):
    """A string that is not a well-formed Lambda function ARN or IAM role ARN."""


class FunctionNotFound(CredentialsError):
    """The ARN or name names no registered credentials-provider function (or another account/region)."""


class FunctionExists(CredentialsError):
    """`register` of a name that is already registered, without replace."""


class FunctionFailed(CredentialsError):
    """The provider function raised, timed out, printed junk or answered with the wrong shape.

    `log` holds what the function wrote to stderr, for `forklift functions invoke --log`, and `detail`
    its own words (an exception's message); neither is ever part of the message, which reaches API
    callers: both go to the function's log on the server (`forklift functions logs NAME`).
    """

    def __init__(self, message: str, *, log: str = "", detail: str = ""):
        super().__init__(message)
        self.log = log
        self.detail = detail


class AccessDeniedByRole(CredentialsError):
    """The execution role does not allow `lambda:InvokeFunction` on the provider function."""


class RoleNotFound(AccessDeniedByRole):
    """An execution role ARN names no defined role (or none was given while roles are defined)."""


class InvalidPolicy(CredentialsError):
    """A role's policy document is not IAM-style JSON forklift can evaluate."""


class HelperFailed(CredentialsError):
    """A `docker-credential-<name>` helper failed (other than "credentials not found")."""


class EcrError(CredentialsError):
    """No ECR authorization token could be obtained."""


class SecretNotFound(CredentialsError):
    """A stored secret id that no longer exists (its last owner released it)."""


class SecretUnreadable(CredentialsError):
    """A stored secret cannot be decrypted with this FORKLIFT_HOME's key."""


class AccessKeyNotFound(CredentialsError):
    """No API access key by that id or name."""


class AccessKeyExists(CredentialsError):
    """An API access key by that name exists already."""
