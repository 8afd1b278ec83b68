"""Which forklift server a command talks to, and the record a running server leaves behind.

While `forklift serve` runs, `$FORKLIFT_HOME/server.json` holds `{"url", "pid", "pid_start", "started",
"log"}`; it is removed at exit. `pid_start` (when the process began, in clock ticks since boot) tells the
recorded server from an unrelated process that got its pid after a crash or a reboot. A command that
talks to the API finds its server in this order:

    --endpoint-url URL                 (the command's option)
    FORKLIFT_URL                       (forklift's own variable)
    AWS_ENDPOINT_URL_SAGEMAKER         (boto3's variable, which user code reads too)
    $FORKLIFT_HOME/server.json         (the server started for this FORKLIFT_HOME)

Standard library only: every command that talks to a server imports this first.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from forklift.atomicfile import write_atomically
from forklift.errors import ForkliftError

SERVER_FILE = "server.json"
URL_VARIABLES = ("FORKLIFT_URL", "AWS_ENDPOINT_URL_SAGEMAKER")
DEFAULT_URL = "http://127.0.0.1:9400"


class NoServer(ForkliftError):
    """No server is named for this command; the message says how to start or name one."""


class ServerRunning(ForkliftError):
    """A live server already owns this FORKLIFT_HOME's server.json."""


@dataclass(frozen=True)
class ServerRecord:
    url: str
    pid: int
    started: float | None = None
    log: str | None = None  # where a server started in the background writes its output
    pid_start: int | None = None


def record_path(home: Path) -> Path:
    return home / SERVER_FILE


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (the process state is the first); None if unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    return fields is None or fields[0] != "Z"


def process_start(pid: int) -> int | None:
    """When process `pid` began (clock ticks since boot, /proc/PID/stat field 22); None when unknown."""
    fields = _stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def same_process(pid: int, start: int | None) -> bool:
    """Whether `pid` still runs and is the process that began at `start` (None: not recorded)."""
    return pid_alive(pid) and (start is None or process_start(pid) == start)


def read_record(home: Path) -> ServerRecord | None:
    """The recorded server, whether or not its process still runs; None when there is no record."""
    try:
        data = json.loads(record_path(home).read_text())
        return ServerRecord(url=str(data["url"]), pid=int(data["pid"]), started=data.get("started"),
                            log=data.get("log"), pid_start=data.get("pid_start"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_record(home: Path) -> ServerRecord | None:
    """The recorded server if its process is alive."""
    record = read_record(home)
    return record if record is not None and same_process(record.pid, record.pid_start) else None


def claim(home: Path) -> None:
    """Refuse to start over a live server's record; a stale one is replaced later."""
    record = live_record(home)
    if record is not None and record.pid != os.getpid():
        raise ServerRunning(f"a forklift server is already running for FORKLIFT_HOME={home} (pid {record.pid}, "
                            f"{record.url}): stop it with `forklift server stop`, or delete {record_path(home)} "
                            "if that process is not forklift")


def write_json_atomically(path: Path, data: dict) -> None:
    """Readers see the old file or the whole new one, never a part; writers in other processes do not
    share a temporary file."""
    write_atomically(path, (json.dumps(data) + "\n").encode())


def write_record(home: Path, url: str, log: str | None = None) -> None:
    record = ServerRecord(url=url, pid=os.getpid(), started=time.time(), log=log, pid_start=process_start(os.getpid()))
    write_json_atomically(record_path(home), asdict(record))


def remove_record_if_ours(home: Path) -> None:
    record = read_record(home)
    if record is not None and record.pid == os.getpid():
        try:
            record_path(home).unlink()
        except OSError:
            pass


def server_url(home: Path, explicit: str | None = None) -> tuple[str, str]:
    """(URL, where it came from) for a command's server, in the order the module docstring gives."""
    if explicit:
        return explicit.rstrip("/"), "--endpoint-url"
    for variable in URL_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if value:
            return value.rstrip("/"), variable
    record = read_record(home)
    if record is not None and same_process(record.pid, record.pid_start):
        return record.url.rstrip("/"), str(record_path(home))
    stale = f" ({record_path(home)} names pid {record.pid}, which is not running)" if record else ""
    raise NoServer(f"no forklift server is running for FORKLIFT_HOME={home}{stale}: start one with "
                   "`forklift server start` (or `forklift serve` in another terminal), or name one with "
                   "--endpoint-url or FORKLIFT_URL")
