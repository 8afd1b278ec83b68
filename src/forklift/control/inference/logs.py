"""Endpoint logs as CloudWatch shows them: one log group per endpoint, one stream per instance.

    group  /aws/sagemaker/Endpoints/<endpoint>
    stream <variant>/<container>     the instance's stdout and stderr, one event per line, stamped
                                     when forklift copied it (within a quarter second of the write)
    stream fleet-events              what the fleet did: instances started, unhealthy and replaced,
                                     updates, failures (the messages of `events.log`, one per event)

The container name (`ep-<hex>`) is the instance id: the fleet events name instances by it too, so
"Instance ep-1a2b... is unhealthy" leads to the stream `AllTraffic/ep-1a2b...`. Files:

    $FORKLIFT_HOME/endpoints/<endpoint>/logs/
      fleet-events.jsonl                         written by `record_fleet_event`
      <variant>/<container>/logs.jsonl           written by a `control.logs.LogPump` ...
      <variant>/<container>/logs.offsets.json    ... which resumes there after a server restart

`InstanceLogs` runs the pumps (one thread for all instances): `follow` when an instance starts or
is re-adopted, `finish` once it has stopped (a last drain, unfinished last line included). Like
AWS, the group outlives DeleteEndpoint: it is served as long as its files exist, and an endpoint
created again under the same name writes into the same group.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from forklift.control.eventlog import LogLimits, StreamFiles
from forklift.control.logs import EVENTS_FILE, LogPump
from forklift.control.logsource import GroupInfo, StreamInfo
from forklift.runtime import ContainerHandle

log = logging.getLogger(__name__)

GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
FLEET_STREAM = "fleet-events"
LOGS_DIR = "logs"
FLEET_FILE = f"{FLEET_STREAM}.jsonl"
PUMP_INTERVAL = 0.25


def record_fleet_event(endpoint_dir: Path, message: str, when: float | None = None) -> None:
    """Append one event to the endpoint's `fleet-events` stream."""
    path = endpoint_dir / LOGS_DIR / FLEET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = int((time.time() if when is None else when) * 1000)
    with open(path, "a") as f:
        f.write(json.dumps({"t": stamp, "m": message}) + "\n")


def stream_dir(endpoint_dir: Path, variant: str, container: str) -> Path:
    return endpoint_dir / LOGS_DIR / variant / container


class InstanceLogs:
    """Copies every followed instance's stdout/stderr into its stream, on one background thread."""

    def __init__(self, interval: float = PUMP_INTERVAL, limits: LogLimits | None = None):
        self.interval = interval
        self.limits = limits or LogLimits()
        self._pumps: dict[str, LogPump] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, endpoint_dir: Path, variant: str, handle: ContainerHandle) -> None:
        """Pump the instance's output from now on (from where an earlier server stopped)."""
        pump = self._pump(endpoint_dir, variant, handle)
        with self._lock:
            self._pumps.setdefault(handle.name, pump)  # never two pumps (two sets of offsets) for one file
            if self._thread is None and not self._done.is_set():
                self._thread = threading.Thread(target=self._run, daemon=True, name="endpoint-logs")
                self._thread.start()

    def finish(self, endpoint_dir: Path, variant: str, handle: ContainerHandle) -> None:
        """The instance has stopped: copy what is left, last unfinished line included."""
        with self._lock:
            pump = self._pumps.pop(handle.name, None)
        try:
            (pump or self._pump(endpoint_dir, variant, handle)).drain(final=True)
        except OSError:
            log.exception("copying the last output of instance %s failed", handle.name)

    def close(self) -> None:
        """Stop pumping (containers keep running; the next server resumes from the offsets)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._drain_all()

    def _pump(self, endpoint_dir: Path, variant: str, handle: ContainerHandle) -> LogPump:
        directory = stream_dir(endpoint_dir, variant, handle.name)
        directory.mkdir(parents=True, exist_ok=True)
        return LogPump(directory, [handle.stdout_path, handle.stderr_path], self.limits)

    def _drain_all(self) -> None:
        with self._lock:
            pumps = list(self._pumps.items())
        for name, pump in pumps:
            try:
                pump.drain()
            except Exception:  # the thread keeps pumping the other instances
                log.exception("copying the output of instance %s failed", name)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._drain_all()


class EndpointLogSource:
    """The LogSource protocol of forklift.control.logsource over every endpoint's `logs/` directory."""

    def __init__(self, home: Path):
        self.root = home / "endpoints"
        self._files: dict[Path, StreamFiles] = {}
        self._lock = threading.Lock()

    def groups(self, prefix: str | None):
        prefix = prefix or ""
        if not (prefix.startswith(GROUP_PREFIX) or GROUP_PREFIX.startswith(prefix)):
            return []
        wanted = prefix[len(GROUP_PREFIX):]
        try:
            names = sorted(d.name for d in self.root.iterdir() if d.name.startswith(wanted))
        except OSError:
            return []
        found = []
        for name in names:
            directory = self._logs_dir(GROUP_PREFIX + name)
            if directory is not None:
                found.append(GroupInfo(GROUP_PREFIX + name, self._created(directory, directory / FLEET_FILE)))
        return found

    def streams(self, group: str, prefix: str | None):
        directory = self._logs_dir(group)
        if directory is None:
            return None
        found = []
        for name, path in sorted(self._stream_files(directory).items()):
            if not name.startswith(prefix or ""):
                continue
            file = self._file(path)
            first, last = file.read(0, 1)[0], file.read(-1, 1)[0]
            found.append(StreamInfo(name, self._created(path.parent if name != FLEET_STREAM else directory, path),
                                    first[0].timestamp if first else None,
                                    last[0].timestamp if last else None,
                                    last[0].timestamp if last else None, file.size()))
        return found

    def events(self, group: str, stream: str, start_index: int, limit: int):
        directory = self._logs_dir(group)
        path = self._stream_file(directory, stream) if directory is not None else None
        if path is None:
            return None
        return self._file(path).read(start_index, limit)

    # -- files ----------------------------------------------------------------------------
    def _logs_dir(self, group: str) -> Path | None:
        name = group[len(GROUP_PREFIX):] if group.startswith(GROUP_PREFIX) else ""
        if not _plain_name(name):
            return None
        directory = self.root / name / LOGS_DIR
        return directory if directory.is_dir() else None

    @staticmethod
    def _stream_files(directory: Path) -> dict[str, Path]:
        found = {FLEET_STREAM: directory / FLEET_FILE} if (directory / FLEET_FILE).is_file() else {}
        for instance in directory.glob("*/*/"):
            found[f"{instance.parent.name}/{instance.name}"] = instance / EVENTS_FILE
        return found

    @staticmethod
    def _stream_file(directory: Path, stream: str) -> Path | None:
        if stream == FLEET_STREAM:
            path = directory / FLEET_FILE
            return path if path.is_file() else None
        variant, _, container = stream.partition("/")
        if not (_plain_name(variant) and _plain_name(container)) or not (directory / variant / container).is_dir():
            return None
        return directory / variant / container / EVENTS_FILE

    def _file(self, path: Path) -> StreamFiles:
        with self._lock:
            file = self._files.get(path)
            if file is None:
                file = self._files[path] = StreamFiles(path)
            return file

    def _created(self, directory: Path, events: Path) -> int:
        """When the first event was written; for a stream without events yet, its directory's time."""
        first = self._file(events).read(0, 1)[0]
        if first:
            return first[0].timestamp
        try:
            return int(directory.stat().st_mtime * 1000)
        except OSError:
            return 0


def _plain_name(name: str) -> bool:
    """A single path component (never `..`): what endpoint, variant and container names are."""
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name
