"""Run a credentials-provider function once, in a child process, and check what it answered.

Both kinds get the event as JSON on stdin, a clean environment (no variable of ours leaks in, none of
theirs leaks out), a private temporary HOME/TMPDIR and a timeout after which their whole process
group is killed:

- `python`: `handler(event, context)` from the registered source, run by `runner.py` in a fresh
  interpreter (`-I`); the answer is the return value.
- `exec`: any program; the answer is the JSON it prints on stdout.

A provider answers `{"Credentials": {"Username": str, "Password": str}}`. Failures become
FunctionFailed messages naming the function and what was wrong, never a value it returned nor its
own words: an exception's text and the stderr go to the function's log (`functionlogs`), which the
message points to.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from forklift.cancel import NEVER, Cancel, Cancelled
from forklift.credentials import Credentials
from forklift.credentials.errors import FunctionFailed
from forklift.credentials.functionlogs import logs_hint
from forklift.serverfile import process_start

RUNNER = Path(__file__).with_name("runner.py")
CANCEL_POLL = 0.2  # how often a running function looks for a stop request
MAX_ANSWER = 6 * 1024 * 1024  # Lambda's synchronous response limit
SHAPE = '{"Credentials": {"Username": "...", "Password": "..."}}'
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
# Keys worth naming in an error (a wrong-case "credentials", a Lambda proxy "body"…); any other key is only
# counted, since a malformed answer could use a secret as a key.
_HINT_KEYS = {"credentials", "creds", "username", "user", "password", "secret", "token", "body", "statuscode",
              "errormessage", "errortype", "auth", "authorizationtoken"}


@dataclass(frozen=True)
class Invocation:
    """Everything needed to run one function: decrypted code, never persisted by this module."""

    name: str
    arn: str
    runtime: str  # "python" | "exec"
    handler: str  # python: function name
    origin: str  # python: registered file name (for tracebacks and imports beside it)
    code: bytes  # python: source; exec: JSON argv
    timeout: float
    region: str


@dataclass(frozen=True)
class InvocationResult:
    response: object  # the function's answer, already decoded from JSON
    log: str  # what the function wrote to stderr (may hold anything it printed: show with care)


TMP_PREFIX = "forklift-fn-"


def tmp_owner(name: str) -> tuple[int, int | None] | None:
    """(pid, start time or None) of the process that made the scratch directory `name`
    (`forklift-fn-<pid>-<start>-…`; None: not one of invoke's). The start time tells it from a later
    process that got the same pid; an older forklift's `forklift-fn-<pid>-…` has none."""
    parts = name.removeprefix(TMP_PREFIX).split("-", 2)
    if not name.startswith(TMP_PREFIX) or len(parts) < 2 or not parts[0].isdigit():
        return None
    start = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
    return int(parts[0]), start or None


def invoke(invocation: Invocation, event: Mapping[str, object], cancel: Cancel = NEVER, *,
           tmp_root: Path | None = None) -> InvocationResult:
    """Run the function once; on a stop (`cancel`) its process group is killed and `Cancelled` raised."""
    # Named by our pid and start time, under the home's tmp_root: what a killed process leaves there is found and swept.
    if tmp_root is not None:
        tmp_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = f"{os.getpid()}-{process_start(os.getpid()) or 0}"
    workdir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{owner}-", dir=tmp_root)  # 0700
    try:
        env = _clean_env(invocation, workdir)
        if invocation.runtime == "python":
            envelope = {
                "source": invocation.code.decode(errors="replace"), "filename": invocation.origin,
                "handler": invocation.handler, "event": event, "timeout": invocation.timeout,
                "context": {"function_name": invocation.name, "invoked_function_arn": invocation.arn,
                            "aws_request_id": env["AWS_LAMBDA_REQUEST_ID"]},
            }
            argv = [sys.executable, "-I", str(RUNNER)]
            stdin = json.dumps(envelope).encode()
        else:
            argv = json.loads(invocation.code)
            stdin = json.dumps(event).encode() + b"\n"  # a line, for `read` in shell scripts
        code, out, err = _run(invocation, argv, stdin, env, workdir, cancel)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log = err.decode(errors="replace")
    try:
        if invocation.runtime == "python":
            return InvocationResult(_python_answer(invocation, code, out), log)
        return InvocationResult(_exec_answer(invocation, code, out), log)
    except FunctionFailed as exc:
        exc.log = log
        raise


def _clean_env(invocation: Invocation, workdir: str) -> dict[str, str]:
    return {
        "PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
        "AWS_REGION": invocation.region, "AWS_DEFAULT_REGION": invocation.region,
        "AWS_LAMBDA_FUNCTION_NAME": invocation.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": f"{invocation.timeout:g}", "AWS_LAMBDA_REQUEST_ID": str(uuid.uuid4()),
    }


def _run(invocation: Invocation, argv: list[str], stdin: bytes, env: dict[str, str],
         cwd: str, cancel: Cancel) -> tuple[int, bytes, bytes]:
    cancel.raise_if_set()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=env, cwd=cwd, start_new_session=True)
    except OSError as exc:
        raise FunctionFailed(f"function {invocation.arn} could not be started: {exc.strerror} ({argv[0]})") from None
    try:
        out, err = _communicate(process, stdin, invocation.timeout, cancel)
    except subprocess.TimeoutExpired:
        _kill_group(process, drain=True)
        raise FunctionFailed(f"function {invocation.arn} timed out after {invocation.timeout:g} s") from None
    except Cancelled:
        _kill_group(process, drain=True)
        raise Cancelled(f"function {invocation.arn} was stopped: its job or endpoint is being stopped") from None
    except BaseException:  # interrupted: never leave a provider running
        _kill_group(process, drain=True)
        raise
    _kill_group(process, drain=False)  # whatever it left running in its session
    return process.returncode, out, err


def _communicate(process: subprocess.Popen[bytes], stdin: bytes, timeout: float,
                 cancel: Cancel) -> tuple[bytes, bytes]:
    """`communicate` in slices, so that a stop is seen while the function runs (the caller kills it)."""
    deadline = time.monotonic() + timeout
    pending: bytes | None = stdin  # written by the first slice only: communicate keeps it after that
    while True:
        left = deadline - time.monotonic()
        try:
            return process.communicate(pending, timeout=max(0.0, min(left, CANCEL_POLL)))
        except subprocess.TimeoutExpired:
            pending = None
            if cancel.is_set():
                raise Cancelled() from None
            if time.monotonic() >= deadline:
                raise


def _kill_group(process: subprocess.Popen[bytes], *, drain: bool) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if drain:
        try:
            process.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            process.kill()
            process.wait()


def _python_answer(invocation: Invocation, code: int, out: bytes) -> object:
    try:
        answer = json.loads(out) if out.strip() else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not ({"ok", "error"} & answer.keys()):
        raise FunctionFailed(f"function {invocation.arn} exited with status {code} without answering "
                             f"{logs_hint(invocation.name)}")
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {}
        kind, message = error.get("type", "Error"), error.get("message", "")
        if kind == "HandlerNotFound":
            raise FunctionFailed(f"function {invocation.arn}: {message}")
        if kind == "ResponseNotSerializable":
            raise FunctionFailed(f"function {invocation.arn} returned a value that is not JSON: {message}")
        raise FunctionFailed(f"function {invocation.arn} raised {_type_name(kind)} {logs_hint(invocation.name)}",
                             detail=f"{kind}: {message}")
    return answer["ok"]


def _exec_answer(invocation: Invocation, code: int, out: bytes) -> object:
    if code != 0:
        raise FunctionFailed(f"function {invocation.arn} exited with status {code} {logs_hint(invocation.name)}")
    if not out.strip():
        raise FunctionFailed(f"function {invocation.arn} printed nothing on stdout; expected {SHAPE}")
    if len(out) > MAX_ANSWER:
        raise FunctionFailed(f"function {invocation.arn} printed more than {MAX_ANSWER} bytes")
    try:
        return json.loads(out)
    except ValueError:
        raise FunctionFailed(
            f"function {invocation.arn} printed output that is not JSON ({len(out)} bytes); expected {SHAPE}"
        ) from None


def _type_name(kind: object) -> str:
    """The exception type as the runner reported it, if it looks like a Python name (it is the function's)."""
    text = str(kind)
    return text if text.replace(".", "").isidentifier() and len(text) <= 100 else "an exception"


def _what(value: object) -> str:
    if value is None:
        return "missing"
    if value == "":
        return "empty"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _keys(mapping: Mapping[str, object]) -> str:
    named = [k for k in mapping if isinstance(k, str) and k.lower() in _HINT_KEYS]
    others = len(mapping) - len(named)
    parts = named + ([f"{others} other{'s' if others > 1 else ''}"] if others else [])
    return ", ".join(parts) if parts else "none"


def credentials_from_response(arn: str, response: object) -> Credentials:
    """Check the `{"Credentials": {"Username", "Password"}}` shape; messages describe, never quote, values."""
    if not isinstance(response, dict):
        raise FunctionFailed(f"function {arn} returned {_what(response)}; expected {SHAPE}")
    inner = response.get("Credentials")
    if not isinstance(inner, dict):
        raise FunctionFailed(
            f"function {arn} returned an object whose \"Credentials\" is {_what(inner)} "
            f"(keys: {_keys(response)}); expected {SHAPE}"
        )
    for field in ("Username", "Password"):
        value = inner.get(field)
        if not isinstance(value, str) or not value:
            raise FunctionFailed(
                f"function {arn} returned Credentials.{field} that is {_what(value)}; expected a non-empty string"
            )
    return Credentials(username=inner["Username"], password=inner["Password"])
