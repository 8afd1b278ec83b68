"""Credentials-provider functions addressed by Lambda-style ARNs.

SageMaker's `RepositoryCredentialsProviderArn` names an AWS Lambda function that answers
`{"Credentials": {"Username": …, "Password": …}}`. forklift keeps such functions locally:

    forklift functions register my-provider --handler provider.py[:handler]   # handler(event, context)
    forklift functions register my-provider --exec "/usr/local/bin/provider --team ml"

and gives each the ARN `arn:aws:lambda:<region>:<account>:function:<name>` (region and account from
the settings: config.toml or `forklift serve --region/--account`). The registered code is kept
encrypted in the SecretStore (a handler may embed a password); the row holds only safe metadata.
Invocation (see `invoke.py`) gets the event `{"registry", "repository", "image"}`; what a function
says on failure (its exception's text, its stderr) goes to `$FORKLIFT_HOME/functions/logs/<name>.log`
(`functionlogs`), never into an error message.

Reserved names `forklift-secret-<secret id>` are not registered functions: they name credentials kept in
the SecretStore (e.g. an experiment's `--registryUsername/--registryPassword`), so a training job can carry
them as its `TrainingRepositoryCredentialsProviderArn` without a new API field. They resolve to the stored
credentials (scoped to the registry they were given for), exist exactly as long as the secret does, and
can never be invoked, registered over or shown.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from forklift.cancel import NEVER, Cancel
from forklift.config import Settings
from forklift.credentials import ANONYMOUS, Credentials
from forklift.credentials.arns import check_function_name, function_arn, parse_function_arn
from forklift.credentials.errors import CredentialsError, FunctionExists, FunctionFailed, FunctionNotFound, InvalidArn
from forklift.credentials.functioninfo import EXEC, PYTHON, FunctionInfo
from forklift.credentials.functionlogs import function_log_path, record
from forklift.credentials.invoke import Invocation, InvocationResult, credentials_from_response, invoke
from forklift.credentials.models import FunctionRow, sessions_for
from forklift.credentials.secrets import SecretStore

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 900.0
CODE_KIND = "function-code"
SECRET_PREFIX = "forklift-secret-"
_SECRET_ID = re.compile(r"^[0-9a-f]{32}$")


def secret_function_name(secret_id: str) -> str:
    """The reserved function name under which a stored secret is a credentials provider."""
    if not _SECRET_ID.match(secret_id):
        raise CredentialsError("not a secret id")
    return SECRET_PREFIX + secret_id


def secret_id_of(name: str) -> str | None:
    """The secret id a reserved `forklift-secret-<id>` name (or ARN) stands for; None for any other name.

    An ARN is read as `FunctionRegistry.name_of` reads it (`parse_function_arn`), so that every spelling
    the registry would resolve to the reserved function (padded, qualified) is known here for one too."""
    if name.startswith("arn:") or name.strip().startswith("arn:"):
        try:
            name = parse_function_arn(name).name
        except InvalidArn:
            return None
    if name.startswith(SECRET_PREFIX) and _SECRET_ID.fullmatch(name[len(SECRET_PREFIX):]):
        return name[len(SECRET_PREFIX):]
    return None


def _owner(name: str) -> str:
    return f"function:{name}"


def split_handler(spec: str) -> tuple[Path, str]:
    """`FILE.py[:FUNC]` → (path, function name, default `handler`)."""
    path, sep, func = spec.rpartition(":")
    if sep and func.isidentifier() and path:
        return Path(path), func
    return Path(spec), "handler"


class FunctionRegistry:
    def __init__(self, settings: Settings, *, sessions: sessionmaker[Session] | None = None,
                 secrets: SecretStore | None = None):
        self.settings = settings
        self._sessions = sessions or sessions_for(settings)
        self._secrets = secrets or SecretStore(settings, sessions=self._sessions)

    def arn(self, name: str) -> str:
        return function_arn(name, self.settings.region, self.settings.account)

    def secret_arn(self, secret_id: str) -> str:
        """The provider ARN that resolves to the stored credentials `secret_id`."""
        return self.arn(secret_function_name(secret_id))

    # -- naming ---------------------------------------------------------------------------------
    def name_of(self, name_or_arn: str) -> str:
        """The function name an ARN (or a bare name) refers to; FunctionNotFound names the expected ARN."""
        if not name_or_arn.startswith("arn:"):
            return check_function_name(name_or_arn)
        arn = parse_function_arn(name_or_arn)
        expected = self.arn(arn.name)
        if arn.account != self.settings.account:
            raise FunctionNotFound(
                f"function ARN {name_or_arn} names account {arn.account}, but this forklift is account "
                f"{self.settings.account}: expected {expected}")
        if arn.region != self.settings.region:
            raise FunctionNotFound(
                f"function ARN {name_or_arn} names region {arn.region}, but this forklift is region "
                f"{self.settings.region}: expected {expected}")
        if arn.partition != "aws" or arn.qualifier not in (None, "$LATEST"):
            raise FunctionNotFound(f"function ARN {name_or_arn} is not one forklift serves: expected {expected}")
        return arn.name

    def _row(self, session: Session, name_or_arn: str) -> FunctionRow:
        name = self.name_of(name_or_arn)
        row = session.get(FunctionRow, name)
        if row is None:
            raise FunctionNotFound(
                f"no credentials-provider function {name} is registered (expected ARN {self.arn(name)}); "
                f"register it with `forklift functions register {name} --handler FILE.py`")
        return row

    # -- registering ----------------------------------------------------------------------------
    def register(self, name: str, *, handler: str | Path | None = None, command: str | Sequence[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, replace: bool = False) -> FunctionInfo:
        """Register a Python `handler` (`FILE.py[:FUNC]`) or a `command`; returns the function with its ARN."""
        check_function_name(name)
        if name.startswith(SECRET_PREFIX):
            raise CredentialsError(f"function names starting with {SECRET_PREFIX} are reserved for stored credentials")
        if (handler is None) == (command is None):
            raise CredentialsError("give exactly one of a handler file (FILE.py[:FUNC]) or a command to run")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise CredentialsError(f"timeout must be between 0 and {MAX_TIMEOUT:g} seconds")
        if handler is not None:
            runtime, entry, origin, code = PYTHON, *_python_code(handler)
        else:
            assert command is not None  # exactly one of handler and command, checked above
            runtime, entry, origin, code = EXEC, "-", *_exec_code(command)
        now = time.time()
        # The code secret is written first, in its own transaction: SQLite cannot upgrade a reader to a writer
        # once another connection has committed.
        secret_id = self._secrets.put_bytes(code, _owner(name), kind=CODE_KIND)
        try:
            with self._sessions.begin() as session:
                row = session.get(FunctionRow, name)
                if row is not None and not replace:
                    raise FunctionExists(f"function {name} is already registered ({self.arn(name)}); "
                                         "delete it first or register with --replace")
                old_secret = row.code_secret_id if row is not None else None
                if row is None:
                    row = FunctionRow(name=name, created_at=now)
                    session.add(row)
                row.runtime, row.handler, row.origin, row.timeout = runtime, entry, origin, float(timeout)
                row.code_secret_id, row.code_sha256 = secret_id, hashlib.sha256(code).hexdigest()
                row.code_size, row.updated_at = len(code), now
        except BaseException:
            self._secrets.release(secret_id, _owner(name))
            raise
        if old_secret is not None:
            self._secrets.release(old_secret, _owner(name))
        return self._info(row)

    def list(self) -> list[FunctionInfo]:
        with self._sessions() as session:
            return [self._info(r) for r in session.scalars(select(FunctionRow).order_by(FunctionRow.name))]

    def get(self, name_or_arn: str) -> FunctionInfo:
        secret_id = secret_id_of(self.name_of(name_or_arn))
        if secret_id is not None:
            return self._secret_info(secret_id)
        with self._sessions() as session:
            return self._info(self._row(session, name_or_arn))

    def delete(self, name_or_arn: str) -> FunctionInfo:
        with self._sessions.begin() as session:
            row = self._row(session, name_or_arn)
            info = self._info(row)
            session.delete(row)
        self._secrets.release(row.code_secret_id, _owner(info.name))
        return info

    # -- invoking -------------------------------------------------------------------------------
    def invoke(self, name_or_arn: str, event: Mapping[str, object], *,
               timeout: float | None = None, cancel: Cancel = NEVER) -> InvocationResult:
        if secret_id_of(self.name_of(name_or_arn)) is not None:
            raise CredentialsError(f"{name_or_arn} names stored credentials, not code: it cannot be invoked")
        with self._sessions() as session:
            row = self._row(session, name_or_arn)
        invocation = Invocation(
            name=row.name, arn=self.arn(row.name), runtime=row.runtime, handler=row.handler, origin=row.origin,
            code=self._secrets.get_bytes(row.code_secret_id), timeout=timeout or row.timeout,
            region=self.settings.region)
        log_path = function_log_path(self.settings.home, row.name)
        context = {"function": row.name, **{k: v for k, v in event.items() if k in ("registry", "repository", "image")}}
        try:
            result = invoke(invocation, event, cancel, tmp_root=self.settings.tmp_dir)
        except FunctionFailed as exc:
            record(log_path, f"failed: {exc.detail or exc}", exc.log, context)
            raise
        if result.log.strip():  # what it answered (the password) is masked: the log is for failures, not secrets
            record(log_path, "answered; its stderr:", _masked(result.log, result.response), context)
        return result

    def credentials(self, name_or_arn: str, registry: str, repository: str, image: str | None = None,
                    cancel: Cancel = NEVER) -> Credentials:
        """Ask the provider for credentials to pull `image` from `registry`/`repository`."""
        secret_id = secret_id_of(self.name_of(name_or_arn))
        if secret_id is not None:  # stored credentials: only for the registry they were given for
            self._secret_info(secret_id)
            scope = self._secrets.registry_of(secret_id)
            return self._secrets.get(secret_id) if scope in (None, registry) else ANONYMOUS
        event = {"registry": registry, "repository": repository, "image": image or f"{registry}/{repository}"}
        result = self.invoke(name_or_arn, event, cancel=cancel)
        return credentials_from_response(self.arn(self.name_of(name_or_arn)), result.response)

    def _secret_info(self, secret_id: str) -> FunctionInfo:
        name = secret_function_name(secret_id)
        if not self._secrets.exists(secret_id):
            raise FunctionNotFound(f"{self.arn(name)} names stored credentials that no longer exist (the "
                                   "experiment or job that held them was deleted)")
        return FunctionInfo(name, self.arn(name), "secret", "-", "secret-store", 0.0, "", 0, 0.0, 0.0)

    def _info(self, row: FunctionRow) -> FunctionInfo:
        return FunctionInfo(row.name, self.arn(row.name), row.runtime, row.handler, row.origin, row.timeout,
                            row.code_sha256, row.code_size, row.created_at, row.updated_at)


def _masked(text: str, answer: object) -> str:
    """`text` with every string the function answered replaced by asterisks."""
    stack, values = [answer], set()
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack += list(value.values())
        elif isinstance(value, list):
            stack += value
        elif isinstance(value, str) and value:
            values.add(value)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "********")
    return text


def _python_code(handler: str | Path) -> tuple[str, str, bytes]:
    path, func = split_handler(str(handler))
    path = path.expanduser().resolve()
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise CredentialsError(f"cannot read handler file {path}: {exc.strerror}") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise CredentialsError(f"handler file {path} line {exc.lineno}: syntax error: {exc.msg}") from None
    if func not in _top_level_names(tree):
        raise CredentialsError(f"handler file {path} defines no function {func!r} (use FILE.py:FUNC for another name)")
    return func, str(path), source


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):
            names.update(_top_level_names(ast.Module(body=node.body + getattr(node, "orelse", []), type_ignores=[])))
    return names


def _exec_code(command: str | Sequence[str]) -> tuple[str, bytes]:
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise CredentialsError("empty command")
    program = argv[0]
    if "/" in program:
        resolved = os.path.abspath(os.path.expanduser(program))
        if not (os.path.isfile(resolved) and os.access(resolved, os.X_OK)):
            raise CredentialsError(f"command {program} is not an executable file")
    else:
        found = shutil.which(program)  # resolved now: invocations run with a clean PATH
        if found is None:
            raise CredentialsError(f"command {program} is not on PATH")
        resolved = os.path.abspath(found)
    argv[0] = resolved
    return resolved, json.dumps(argv).encode()

