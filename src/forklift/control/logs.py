"""Training job logs: the container's stdout/stderr copied, line by line and time-stamped, into
`$FORKLIFT_HOME/jobs/<job>/logs.jsonl`, and served to the API as a CloudWatch-style LogSource.

The pump remembers how far it has read each file (`logs.offsets.json`), so a restarted server
resumes where the previous one stopped instead of copying lines twice. A line is stamped with its
file's modification time when it was copied, i.e. when the last line of that chunk was written
(never later than the copy, never earlier than a line copied before).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from forklift.atomicfile import write_atomically
from forklift.control.logsource import GroupInfo, LogEvent, StreamInfo
from forklift.control.store import JobStore

GROUP = "/aws/sagemaker/TrainingJobs"
EVENTS_FILE = "logs.jsonl"
OFFSETS_FILE = "logs.offsets.json"


def job_dir(home: Path, name: str) -> Path:
    return home / "jobs" / name


class LogPump:
    """Copies new complete lines of `sources` into the job's event file."""

    def __init__(self, directory: Path, sources: list[Path]):
        self.events = directory / EVENTS_FILE
        self.offsets_path = directory / OFFSETS_FILE
        self.sources = sources
        self._lock = threading.Lock()  # the pump thread and the runner's final drain must not interleave
        self._last = 0  # the latest stamp written: events stay in time order
        try:
            self.offsets = json.loads(self.offsets_path.read_text())
        except (OSError, ValueError):
            self.offsets = {}

    def drain(self, final: bool = False) -> int:
        """Copy what is new; with `final`, also a last line without newline. Returns lines copied."""
        with self._lock:
            return self._drain(final)

    def _drain(self, final: bool) -> int:
        lines: list[tuple[int, str]] = []
        now = int(time.time() * 1000)
        for source in self.sources:
            offset = int(self.offsets.get(source.name, 0))
            try:
                with open(source, "rb") as f:
                    f.seek(offset)
                    data = f.read()
                    written = min(now, max(self._last, os.fstat(f.fileno()).st_mtime_ns // 1_000_000))
            except OSError:
                continue
            end = len(data) if final else data.rfind(b"\n") + 1
            if end <= 0:
                continue
            chunk = data[:end]
            texts = [line.decode(errors="replace") for line in chunk.split(b"\n")]
            if chunk.endswith(b"\n"):
                texts.pop()  # the empty string after the last newline
            lines += [(written, text) for text in texts]
            self.offsets[source.name] = offset + end
        if lines:
            lines.sort(key=lambda line: line[0])  # stable: each file's lines keep their order
            self._last = lines[-1][0]
            with open(self.events, "a") as f:
                f.writelines(json.dumps({"t": stamp, "m": text}) + "\n" for stamp, text in lines)
            write_atomically(self.offsets_path, json.dumps(self.offsets).encode())
        return len(lines)

    def run(self, done: threading.Event, interval: float = 0.25) -> None:
        while not done.wait(interval):
            self.drain()
        self.drain()


def read_events(home: Path, job: str) -> list[LogEvent]:
    try:
        with open(job_dir(home, job) / EVENTS_FILE) as f:
            return [LogEvent(e["t"], e["m"]) for e in map(json.loads, f) if e]
    except OSError:
        return []


class TrainingLogSource:
    """The LogSource protocol of forklift.control.logsource over the jobs' event files."""

    def __init__(self, home: Path, store: JobStore):
        self.home = home
        self.store = store

    def groups(self, prefix: str | None):
        return [GroupInfo(GROUP, 0)] if GROUP.startswith(prefix or "") else []

    def streams(self, group: str, prefix: str | None):
        if group != GROUP:
            return None
        prefix = prefix or ""
        # A prefix "<job>/" names one job: look it up instead of scanning every job.
        job = prefix.split("/", 1)[0] if "/" in prefix else None
        rows = [r for r in ([self.store.get(job)] if job else self._rows_with_logs()) if r is not None]
        found = []
        for row in rows:
            if not row.log_stream or not row.log_stream.startswith(prefix):
                continue
            events = read_events(self.home, row.name)
            created = int((row.training_start or row.created_at) * 1000)
            found.append(StreamInfo(row.log_stream, created,
                                    events[0].timestamp if events else None,
                                    events[-1].timestamp if events else None,
                                    events[-1].timestamp if events else None,
                                    sum(len(e.message.encode()) for e in events)))
        return found

    def _rows_with_logs(self):
        return [self.store.get(name) for name in self.store.names()]

    def events(self, group: str, stream: str, start_index: int, limit: int):
        if group != GROUP:
            return None
        job = stream.split("/", 1)[0]
        row = self.store.get(job)
        if row is None or row.log_stream != stream:
            return None
        stored = read_events(self.home, job)
        start = max(0, len(stored) + start_index) if start_index < 0 else min(start_index, len(stored))
        chunk = stored[start:start + max(0, limit)]
        return chunk, start + len(chunk)
