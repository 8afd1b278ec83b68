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

import errno


class ForkliftError(Exception):
    """Something the user can fix; `str()` is the message to show them."""


# How every "the disk is full" message ends: forklift writes under FORKLIFT_HOME.
FREE_SPACE = "free disk space there, or point FORKLIFT_HOME at a larger disk"


class DiskFull(ForkliftError):
    """A write ran out of disk; the message names the directory and what to do."""

    def __init__(self, directory: object, what: str = "") -> None:
        super().__init__(f"{what + ': ' if what else ''}{no_space(directory)}")


def no_space(directory: object) -> str:
    return f"No space left on device in {directory}: {FREE_SPACE}"


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it was raised from or during, is a full disk or quota: ENOSPC or
    EDQUOT from the kernel, or SQLite's SQLITE_FULL as sqlite3 (and SQLAlchemy around it) word it.

    The one test every layer asks before wording a failure as "free disk space there".
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
