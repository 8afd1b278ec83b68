"""The audit log: who changed what, when, from where, and how it ended.

Append-only JSON lines under `$FORKLIFT_HOME/audit/`, one file per UTC day (`2026-12-03.jsonl`),
created 0600 in a 0700 directory. Each record is one `write` on a descriptor opened with
`O_APPEND`, so the server's threads, a second server on the same home and the CLI can all append
at once and the file only ever holds whole lines.

What is recorded (each writer picks the fields it records; nothing is dumped wholesale, so no
secret, password or signature can reach a record):

- every mutating call on the API (`forklift.api.audittrail`): the operation, the resource it names,
  the principal, the outcome (`"ok"` or the error code: a refused signature, a denied or invalid
  request are recorded too), the request id and the source address. Reads (Describe*, List*, Get*,
  …) are not recorded, nor is InvokeEndpoint: it is the data plane, one record per inference would
  flood the log and say nothing about who may do what;
- every image pull of a training job or an endpoint (`forklift.control`): the owner of the job or
  endpoint, the registry, repository and digest, the outcome;
- the CLI's local commands that change who may do what (`forklift keys create|delete`,
  `forklift roles put|delete`), with principal `local:<unix user>`;
- each orphaned Kubernetes object a server reports at start (`forklift.control.kubernetes.orphans`:
  its kind, namespace, name, label, why, and the `kubectl` command that removes it), with principal
  `forklift:server`.

`forklift audit` reads the files back (`read`), reporting a line it cannot parse instead of failing.
Standard library only: every layer may record.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

DIRECTORY = "audit"
OK = "ok"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def audit_dir(home: Path) -> Path:
    return home / DIRECTORY


def now_iso(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`: `2026-12-03T10:15:30.123Z`."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_principal() -> str:
    """Who runs a local command: `local:<unix user name>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (a bare container)
        user = str(os.getuid())
    return f"local:{user}"


def outcome_of(error: BaseException) -> str:
    """The outcome recorded for a failure: its AWS-style `code` when it has one, else its class name
    (never its message, which may quote what the caller sent)."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) and code else type(error).__name__


class AuditLog:
    """Appends records to the day's file under `home/audit/`."""

    def __init__(self, home: Path):
        self.directory = audit_dir(home)

    def _ensure_directory(self) -> None:
        try:
            os.mkdir(self.directory, _DIR_MODE)
        except FileExistsError:
            return
        except FileNotFoundError:  # a home not made yet
            self.directory.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.directory, _DIR_MODE)
        os.chmod(self.directory, _DIR_MODE)  # the umask may have taken bits away; never add any

    def append(self, record: Mapping[str, Any]) -> None:
        """Write `record` (given a `time` when it has none) as one line of its UTC day's file."""
        entry = dict(record)
        entry.setdefault("time", now_iso())
        line = (json.dumps(entry, ensure_ascii=True, separators=(",", ":"), default=str) + "\n").encode()
        self._ensure_directory()
        path = self.directory / f"{entry['time'][:10]}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        try:
            os.write(fd, line)  # one write per record: concurrent appenders never interleave
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def action(self, principal: str, operation: str, resource: str | None = None,
               **fields: Any) -> Iterator[dict[str, Any]]:
        """Record one action when the block ends, with outcome "ok" or the error it raised; the block
        may fill in what it learns (`note["resource"] = …`) in the dict it is given."""
        note: dict[str, Any] = {"event": "local", "principal": principal, "operation": operation,
                                "resource": resource, **fields}
        try:
            yield note
        except BaseException as error:
            note["outcome"] = outcome_of(error)
            raise
        else:
            note["outcome"] = OK
        finally:
            self.append(note)


@dataclass(frozen=True)
class CorruptLine:
    """A line `read` could not parse, where it is."""

    path: Path
    number: int


def read(home: Path, since: datetime | None = None) -> Iterator[dict[str, Any] | CorruptLine]:
    """Every record from `since` on (all when None), oldest file first; a line that is not a JSON
    object comes as a `CorruptLine` instead."""
    directory = audit_dir(home)
    if not directory.is_dir():
        return
    first_day = since.astimezone(UTC).date() if since else date.min
    threshold = now_iso(since) if since else ""
    for path in sorted(directory.glob("*.jsonl")):
        try:
            day = date.fromisoformat(path.stem)
        except ValueError:
            continue  # not one of the day files
        if day < first_day:
            continue
        with open(path, "rb") as lines:
            for number, raw in enumerate(lines, 1):
                try:
                    record = json.loads(raw)
                except (UnicodeDecodeError, ValueError):
                    record = None
                if not isinstance(record, dict) or not isinstance(record.get("time"), str):
                    yield CorruptLine(path, number)
                elif record["time"] >= threshold:
                    yield record
