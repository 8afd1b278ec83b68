"""What provider functions and credential helpers said when they failed, kept on the server's machine.

    $FORKLIFT_HOME/functions/logs/<function>.log     `forklift functions logs NAME [--tail N]`
    $FORKLIFT_HOME/logs/credential-helpers.log       docker-credential-<name> failures

A function's exception text, traceback and stderr may hold anything it saw (a vault token in an
error message), so they never go into an API answer, a FailureReason or a CLI error: those name the
function and the exception type and point here. The files are 0600 in 0700 directories and bounded:
past MAX_BYTES the file is moved to `<name>.log.1` (replacing the older one) and a new one started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from forklift.credentials.arns import check_function_name

MAX_BYTES = 1 << 20
HELPERS_LOG = Path("logs") / "credential-helpers.log"


def function_log_path(home: Path, name: str) -> Path:
    return home / "functions" / "logs" / f"{check_function_name(name)}.log"


def logs_hint(name: str) -> str:
    """The pointer an API caller gets instead of the function's own words."""
    return f"(details: `forklift functions logs {name}` on the server)"


def record(path: Path, headline: str, text: str = "", context: Mapping[str, object] | None = None) -> None:
    """Append one timestamped entry; a log that cannot be written must not hide the failure itself."""
    when = datetime.now(tz=UTC).isoformat(timespec="seconds")
    about = " ".join(f"{k}={v}" for k, v in (context or {}).items())
    entry = f"--- {when} {about}".rstrip() + f"\n{headline}\n" + (text.rstrip("\n") + "\n" if text.strip() else "")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _rotate(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, entry.encode(errors="replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def _rotate(path: Path) -> None:
    try:
        if path.stat().st_size > MAX_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def read_log(path: Path, tail: int | None = None) -> str:
    """The log's text (the rotated part first), or its last `tail` lines; empty when there is none."""
    text = ""
    for part in (path.with_name(path.name + ".1"), path):
        try:
            text += part.read_text(errors="replace")
        except FileNotFoundError:
            continue
    if tail is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail:]) if tail > 0 else ""
    return text
