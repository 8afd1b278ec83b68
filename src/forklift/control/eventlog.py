"""A log stream's events on disk, bounded: JSON lines in `logs.jsonl` and at most `files - 1` older
files beside it, `logs.jsonl.<index of its first event>`, holding together about `max_bytes`.

When the live file reaches `max_bytes / files` it is renamed after its first event's index and a new
one begun; the oldest files beyond `files` are deleted. So a container that writes gigabytes keeps
its last `max_bytes` (CloudWatch drops the oldest by retention too), and positions stay absolute:
an event keeps its index after the events before it are dropped, so a reader's `nextToken` still
means the same event (`LogSource.events`).

Written by one `control.logs.LogPump` per stream; read by `StreamFiles` (training jobs and endpoints).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forklift.control.logsource import LogEvent

MiB = 1 << 20
DEFAULT_MAX_BYTES = 64 * MiB
DEFAULT_FILES = 4


@dataclass(frozen=True)
class LogLimits:
    """What one log stream keeps: config.toml's `[containers] log_max_bytes` across `log_files` files
    (at least two: the newest rotated file's name carries the live file's first position)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    files: int = DEFAULT_FILES

    @property
    def file_bytes(self) -> int:
        return max(4096, self.max_bytes // self.files)

    @property
    def behind_bytes(self) -> int:
        """How much unread output a pump keeps when it has fallen behind: half of what the rotated
        files hold, so that output as JSON (escapes, stamps) still fits after the note of the drop."""
        return (self.files - 1) * self.file_bytes // 2


def segments(live: Path) -> list[tuple[int, Path]]:
    """(index of the first event, file) of a stream's files, oldest first, the live file last (when
    it exists). The live file's first index is the last rotated file's, plus its lines."""
    rotated = []
    for path in live.parent.glob(live.name + ".*"):
        suffix = path.name[len(live.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    rotated.sort()
    if not live.exists():
        return rotated
    first = rotated[-1][0] + _count_lines(rotated[-1][1]) if rotated else 0
    return [*rotated, (first, live)]


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(MiB), b""))
    except OSError:
        return 0


class EventWriter:
    """Appends events to a stream's live file, rotating and dropping files to keep `limits`."""

    def __init__(self, live: Path, limits: LogLimits):
        self.live, self.limits = live, limits

    def append(self, events: Sequence[tuple[int, str]]) -> None:
        """Write `events` (stamp, message), rotating as often as a large batch needs."""
        pending = [json.dumps({"t": stamp, "m": text}) + "\n" for stamp, text in events]  # ASCII: len is bytes
        while pending:
            with open(self.live, "a") as f:
                room = self.limits.file_bytes - f.tell()
                count = 0
                while count < len(pending) and (room > 0 or count == 0):
                    room -= len(pending[count])
                    count += 1
                f.writelines(pending[:count])
                full = room <= 0
            del pending[:count]
            if full:
                self._rotate()

    def _rotate(self) -> None:
        first = segments(self.live)[-1][0]
        os.replace(self.live, self.live.with_name(f"{self.live.name}.{first}"))
        rotated = segments(self.live)  # the live file is gone until the next append
        for _, old in rotated[:max(0, len(rotated) - (self.limits.files - 1))]:
            old.unlink(missing_ok=True)


class EventFile:
    """One JSON-lines event file read by position, without re-reading what comes before.

    Remembers the byte offset of every STEP-th line, and how far it has counted; a reader never
    sees a line the writer has not finished (no newline yet).
    """

    STEP = 256

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, inode: int | None) -> None:
        self._inode, self._marks, self._count, self._scanned = inode, [0], 0, 0

    def _count_lines(self, f) -> int:
        stat = os.fstat(f.fileno())
        if stat.st_ino != self._inode or stat.st_size < self._scanned:
            self._reset(stat.st_ino)
        f.seek(self._scanned)
        for line in f:
            if not line.endswith(b"\n"):
                break
            self._scanned += len(line)
            self._count += 1
            if self._count % self.STEP == 0:
                self._marks.append(self._scanned)
        return self._count

    def count(self) -> int:
        try:
            with open(self.path, "rb") as f, self._lock:
                return self._count_lines(f)
        except OSError:
            return 0

    def read(self, start: int, limit: int) -> tuple[list[LogEvent], int]:
        """As `LogSource.events` over this file alone: up to `limit` events from `start` (negative: from the end)."""
        try:
            f = open(self.path, "rb")
        except OSError:
            return [], 0
        with f, self._lock:
            count = self._count_lines(f)
            start = max(0, count + start) if start < 0 else min(start, count)
            stop = min(count, start + max(0, limit))
            f.seek(self._marks[start // self.STEP])
            for _ in range(start % self.STEP):
                f.readline()
            events: list[LogEvent] = []
            for _ in range(stop - start):
                events.append(parse(f.readline(), events[-1].timestamp if events else 0))
        return events, stop


class StreamFiles:
    """A stream's files read as one sequence of events at absolute positions."""

    def __init__(self, live: Path):
        self.live = live
        self._files: dict[Path, EventFile] = {}
        self._lock = threading.Lock()

    def read(self, start: int, limit: int) -> tuple[list[LogEvent], int]:
        """As `LogSource.events`: a start before the oldest kept event begins at the oldest."""
        parts = [(first, self._file(path)) for first, path in segments(self.live)]
        with self._lock:  # forget the files rotated away
            kept = {file.path for _, file in parts}
            self._files = {path: file for path, file in self._files.items() if path in kept}
        if not parts:
            return [], 0
        end = parts[-1][0] + parts[-1][1].count()
        position = max(parts[0][0], end + start) if start < 0 else min(max(start, parts[0][0]), end)
        events: list[LogEvent] = []
        for first, file in parts:
            if len(events) >= limit:
                break
            if position >= first + file.count() and file is not parts[-1][1]:
                continue
            got, stop = file.read(max(0, position - first), limit - len(events))
            events += got
            position = first + stop
        return events, position

    def size(self) -> int:
        total = 0
        for _, path in segments(self.live):
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total

    def _file(self, path: Path) -> EventFile:
        with self._lock:
            file = self._files.get(path)
            if file is None:
                file = self._files[path] = EventFile(path)
            return file


def parse(line: bytes, previous: int) -> LogEvent:
    """One stored event; a line damaged by a crash mid-write is kept as text, not lost or fatal."""
    try:
        entry = json.loads(line)
        return LogEvent(int(entry["t"]), str(entry["m"]))
    except (ValueError, KeyError, TypeError):
        return LogEvent(previous, line.decode(errors="replace").rstrip("\n"))
