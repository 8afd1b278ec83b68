"""Training job logs: the container's stdout/stderr copied, line by line and time-stamped, into
`$FORKLIFT_HOME/jobs/<job>/logs.jsonl` (bounded and rotated: `control.eventlog`), and served to the
API as a CloudWatch-style LogSource.

The pump remembers how far it has read each file (`logs.offsets.json`), so a restarted server
resumes where the previous one stopped instead of copying lines twice. A line is stamped with its
file's modification time when it was copied, i.e. when the last line of that chunk was written
(never later than the copy, never earlier than a line copied before).

A container may write faster than anything can copy it: the pump reads a megabyte of each file at a
time, skips to the newest `LogLimits.behind_bytes` when it is further behind (saying how much it dropped), and
gives the disk blocks of what it has copied back (`FALLOC_FL_PUNCH_HOLE`; the file keeps its size,
so the container's appends and the saved offsets are unchanged). A container's output on disk is so
bounded by what it writes between two drains (a quarter second) plus `behind_bytes`, while the server runs.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from forklift.atomicfile import write_atomically
from forklift.control.eventlog import EventWriter, LogLimits, StreamFiles
from forklift.control.logsource import GroupInfo, StreamInfo
from forklift.control.store import JobStore
from forklift.images.limits import human

log = logging.getLogger(__name__)

GROUP = "/aws/sagemaker/TrainingJobs"
EVENTS_FILE = "logs.jsonl"
OFFSETS_FILE = "logs.offsets.json"
READ_CHUNK = 1 << 20  # what one drain reads of one file: a flood is copied a megabyte at a time
RELEASE_EVERY = 1 << 20  # copied bytes of an output file whose disk blocks are then given back
_PUNCH = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
_libc = ctypes.CDLL(None, use_errno=True)


def job_dir(home: Path, name: str) -> Path:
    return home / "jobs" / name


def release_copied(path: Path, upto: int) -> None:
    """Free the disk blocks of `path` before `upto` (whole pages), keeping its size and the rest.

    Raises OSError where the filesystem cannot punch holes (the file then keeps its blocks); a file
    gone already is left alone."""
    length = upto - upto % 4096
    if length <= 0:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if _libc.fallocate(fd, _PUNCH, ctypes.c_int64(0), ctypes.c_int64(length)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


class LogPump:
    """Copies new complete lines of `sources` into the job's event files, within `limits`."""

    def __init__(self, directory: Path, sources: list[Path], limits: LogLimits | None = None,
                 observer: Callable[[list[tuple[int, str]]], None] | None = None):
        self.limits = limits or LogLimits()
        self.observer = observer  # handed each drain's lines once written (a job's metric definitions)
        self.events = EventWriter(directory / EVENTS_FILE, self.limits)
        self.offsets_path = directory / OFFSETS_FILE
        self.sources = sources
        self._lock = threading.Lock()  # the pump thread and the runner's final drain must not interleave
        self._last = 0  # the latest stamp written: events stay in time order
        self._released: dict[str, int] = {}
        self._unreleased = False  # warned that the sources' copied output cannot be given back
        try:
            self.offsets = json.loads(self.offsets_path.read_text())
        except (OSError, ValueError):
            self.offsets = {}

    def drain(self, final: bool = False) -> int:
        """Copy what is new; with `final`, all of it, a last line without newline too. Returns lines copied."""
        with self._lock:
            return self._drain(final)

    def _drain(self, final: bool) -> int:
        lines: list[tuple[int, str]] = []
        now = int(time.time() * 1000)
        moved = False
        for source in self.sources:
            offset = int(self.offsets.get(source.name, 0))
            try:
                got, new_offset = self._read(source, offset, now, final)
            except OSError:
                continue
            lines += got
            if new_offset != offset:
                self.offsets[source.name] = new_offset
                moved = True
                if new_offset - self._released.get(source.name, 0) >= RELEASE_EVERY:
                    self._release(source, new_offset)
        if lines:
            lines.sort(key=lambda line: line[0])  # stable: each file's lines keep their order
            self._last = lines[-1][0]
            self.events.append(lines)
            self._observe(lines)
        if moved:
            write_atomically(self.offsets_path, json.dumps(self.offsets).encode())
        return len(lines)

    def _observe(self, lines: list[tuple[int, str]]) -> None:
        if self.observer is None:
            return
        try:
            self.observer(lines)
        except Exception:  # noqa: BLE001 - what watches the log never stops the copy
            log.exception("the observer of log %s failed on %d lines", self.events.live, len(lines))

    def _release(self, source: Path, upto: int) -> None:
        self._released[source.name] = upto
        try:
            release_copied(source, upto)
        except OSError as e:
            if not self._unreleased:  # once per stream: the next megabyte fails the same way
                self._unreleased = True
                log.warning("Container output %s keeps its disk space after it is copied and grows until the container "
                            "stops, because its filesystem cannot punch holes (%s); keep containers' state on ext4, "
                            "XFS, Btrfs or tmpfs to bound it.", source, e.strerror)

    def _read(self, source: Path, offset: int, now: int, final: bool) -> tuple[list[tuple[int, str]], int]:
        lines: list[tuple[int, str]] = []
        with open(source, "rb") as f:
            stat = os.fstat(f.fileno())
            written = min(now, max(self._last, stat.st_mtime_ns // 1_000_000))
            behind = stat.st_size - offset
            if behind > self.limits.behind_bytes:  # keep the newest output, say what was dropped
                dropped = behind - self.limits.behind_bytes
                kept = human(self.limits.max_bytes)
                lines.append((written, f"[forklift: {human(dropped)} of output dropped: the container wrote it faster "
                                       f"than it could be copied; the log keeps the last {kept}]"))
                offset += dropped
            while True:
                f.seek(offset)
                data = f.read(READ_CHUNK)
                end = data.rfind(b"\n") + 1
                if end == 0 and (final or len(data) == READ_CHUNK):
                    end = len(data)  # the last line at the end, or one longer than a chunk, is cut here
                if end == 0:
                    break
                chunk = data[:end]
                texts = [line.decode(errors="replace") for line in chunk.split(b"\n")]
                if chunk.endswith(b"\n"):
                    texts.pop()  # the empty string after the last newline
                lines += [(written, text) for text in texts]
                offset += end
                if not final:
                    break  # the next drain reads on; the final one reads to the end
        return lines, offset

    def run(self, done: threading.Event, interval: float = 0.25) -> None:
        while not done.wait(interval):
            self.drain()
        self.drain()


class TrainingLogSource:
    """The LogSource protocol of forklift.control.logsource over the jobs' event files."""

    def __init__(self, home: Path, store: JobStore):
        self.home = home
        self.store = store
        self._streams: dict[str, StreamFiles] = {}
        self._lock = threading.Lock()

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
            files = self._files(row.name)
            first, last = files.read(0, 1)[0], files.read(-1, 1)[0]
            created = int((row.training_start or row.created_at) * 1000)
            found.append(StreamInfo(row.log_stream, created,
                                    first[0].timestamp if first else None,
                                    last[0].timestamp if last else None,
                                    last[0].timestamp if last else None,
                                    files.size()))
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
        return self._files(job).read(start_index, limit)

    def _files(self, job: str) -> StreamFiles:
        with self._lock:  # one per job: it remembers where its lines are
            files = self._streams.get(job)
            if files is None:
                files = self._streams[job] = StreamFiles(job_dir(self.home, job) / EVENTS_FILE)
            return files
