"""docker's credential-helper protocol: `docker-credential-<name> get|store|erase|list`.

    get    stdin: the server URL            stdout: {"ServerURL": …, "Username": …, "Secret": …}
    store  stdin: {"ServerURL", "Username", "Secret"}
    erase  stdin: the server URL
    list   stdout: {"<server URL>": "<username>", …}

A helper that has nothing for the server exits non-zero and prints `credentials not found in native
keychain`. `Username == "<token>"` means Secret is an identity (OAuth2 refresh) token. Secrets travel on
stdin/stdout only, never in process arguments; they never appear in our error messages. What a
failing helper printed goes to `$FORKLIFT_HOME/logs/credential-helpers.log` (`functionlogs`), not
into the error, which may reach an API caller.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess

from forklift.config import forklift_home
from forklift.credentials import Credentials
from forklift.credentials.errors import HelperFailed
from forklift.credentials.functionlogs import HELPERS_LOG, record

log = logging.getLogger(__name__)

PREFIX = "docker-credential-"
NOT_FOUND = "credentials not found in native keychain"
TOKEN_USERNAME = "<token>"
DEFAULT_TIMEOUT = 30.0


def helper_program(name: str) -> str:
    """Absolute path of `docker-credential-<name>` on PATH, or HelperFailed."""
    program = shutil.which(PREFIX + name)
    if program is None:
        raise HelperFailed(f"credential helper {PREFIX}{name} is not on PATH")
    return program


def _run(name: str, verb: str, stdin: str, *, timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    program = helper_program(name)
    try:
        return subprocess.run([program, verb], input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise HelperFailed(f"credential helper {PREFIX}{name} {verb} did not answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise HelperFailed(f"credential helper {PREFIX}{name} could not be run: {exc.strerror}") from None


def _failure(name: str, verb: str, result: subprocess.CompletedProcess[str], secret: str | None = None) -> HelperFailed:
    output = f"{result.stdout.rstrip()}\n{result.stderr.rstrip()}".strip()
    if secret:
        output = output.replace(secret, "********")
    log_path = forklift_home() / HELPERS_LOG
    record(log_path, f"{PREFIX}{name} {verb} failed (exit status {result.returncode}); it printed:", output,
           {"helper": PREFIX + name})
    return HelperFailed(f"credential helper {PREFIX}{name} {verb} failed (exit status {result.returncode}; "
                        f"what it printed is in {log_path} on the server)")


def _not_found(result: subprocess.CompletedProcess[str]) -> bool:
    return NOT_FOUND in (result.stdout + result.stderr).lower()


def helper_get(name: str, server_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Credentials | None:
    """The helper's credentials for `server_url`, or None when it has none."""
    result = _run(name, "get", server_url, timeout=timeout)
    if result.returncode != 0:
        if _not_found(result):
            return None
        raise _failure(name, "get", result)
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        raise HelperFailed(f"credential helper {PREFIX}{name} get printed output that is not JSON") from None
    if not isinstance(answer, dict):
        raise HelperFailed(f"credential helper {PREFIX}{name} get printed JSON that is not an object")
    username, secret = answer.get("Username"), answer.get("Secret")
    if not isinstance(secret, str) or not isinstance(username, (str, type(None))):
        raise HelperFailed(f"credential helper {PREFIX}{name} get answered without string Username and Secret")
    if not secret:
        return None
    if username == TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    return Credentials(username=username or None, password=secret)


def helper_store(name: str, server_url: str, username: str, secret: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    payload = json.dumps({"ServerURL": server_url, "Username": username, "Secret": secret})
    result = _run(name, "store", payload, timeout=timeout)
    if result.returncode != 0:
        raise _failure(name, "store", result, secret)


def helper_erase(name: str, server_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Erase the helper's entry for `server_url`; False when it had none."""
    result = _run(name, "erase", server_url, timeout=timeout)
    if result.returncode != 0:
        if _not_found(result):
            return False
        raise _failure(name, "erase", result)
    return True


def helper_list(name: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """Server URL → username for every entry the helper holds (no secrets)."""
    result = _run(name, "list", "", timeout=timeout)
    if result.returncode != 0:
        raise _failure(name, "list", result)
    try:
        answer = json.loads(result.stdout or "{}")
    except ValueError:
        raise HelperFailed(f"credential helper {PREFIX}{name} list printed output that is not JSON") from None
    return {str(k): str(v) for k, v in answer.items()} if isinstance(answer, dict) else {}
