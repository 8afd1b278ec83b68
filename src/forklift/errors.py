"""The root of forklift's errors.

The rule: anything the user can fix — a name that does not parse, a file that is not there, an image
not pulled yet, a registry that refuses the password, a server that is not running — is raised as a
`ForkliftError` subclass whose message says what is wrong and how to fix it. The CLI prints such an
error as one line (`Error: <message>`); the API answers it with the AWS error code its layer maps it
to. Anything else that escapes is a bug: the CLI reports it as an internal error and writes the
traceback to a file.

Each layer has one base deriving from `ForkliftError` (`InvalidReference`, `CredentialsError`,
`RegistryError`, `ImageError`, `StorageError`, `ContainerRuntimeError`, `ControlError`,
`ExperimentError`, `ConfigError`, `forklift.api.errors.ApiError`, `forklift.jsonclient.ApiError` …).
Where callers catch an error by a builtin type (`LookupError`, `ValueError`, `KeyError`, `OSError`),
that type stays a second base.

This module imports nothing from forklift: every layer may import it.
"""

from __future__ import annotations


class ForkliftError(Exception):
    """Something the user can fix; `str()` is the message to show them."""
