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
from typing import BinaryIO

from forklift.control.logsource import LogEvent

MiB = 1 << 20
DEFAULT_MAX_BYTES = 64 * MiB
DEFAULT_FILES = 4
SNAPSHOT_TRIES = 100  # rotations seen one after another by a read before it gives up


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


def rotated(live: Path) -> list[tuple[int, Path]]:
    """(index of the first event, file) of a stream's rotated files, oldest first."""
    found = []
    for path in live.parent.glob(live.name + ".*"):
        suffix = path.name[len(live.name) + 1:]
        if suffix.isdigit():
            found.append((int(suffix), path))
    return sorted(found)


def segments(live: Path) -> list[tuple[int, Path]]:
    """(index of the first event, file) of a stream's files, oldest first, the live file last (when
    it exists). The live file's first index is the last rotated file's, plus its lines."""
    older = rotated(live)
    if not live.exists():
        return older
    first = older[-1][0] + _count_lines(older[-1][1]) if older else 0
    return [*older, (first, live)]


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
        older = rotated(self.live)  # the live file is gone until the next append
        for _, old in older[:max(0, len(older) - (self.limits.files - 1))]:
            old.unlink(missing_ok=True)


class EventFile:
    """One JSON-lines event file read by position, without re-reading what comes before.

    Remembers the byte offset of every STEP-th line, and how far it has counted, of the file it was
    last given (by inode: a live file keeps its marks when it is renamed into a rotated one). A
    reader never sees a line the writer has not finished (no newline yet).
    """

    STEP = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, inode: int | None) -> None:
        self._inode, self._marks, self._count, self._scanned = inode, [0], 0, 0

    def _count_lines(self, f: BinaryIO) -> int:
        stat = os.fstat(f.fileno())
        if stat.st_ino != self._inode or stat.st_size < self._scanned:
            self._reset(stat.st_ino)
        if stat.st_size == self._scanned:
            return self._count  # a rotated file never changes: counted once
        f.seek(self._scanned)
        for line in f:
            if not line.endswith(b"\n"):
                break
            self._scanned += len(line)
            self._count += 1
            if self._count % self.STEP == 0:
                self._marks.append(self._scanned)
        return self._count

    def count(self, f: BinaryIO) -> int:
        """Complete lines in `f`, the file this stands for."""
        with self._lock:
            return self._count_lines(f)

    def read(self, f: BinaryIO, start: int, stop: int) -> list[LogEvent]:
        """The events of `f` at [start, stop) (fewer where it has fewer lines)."""
        with self._lock:
            stop = min(stop, self._count_lines(f))
            if start >= stop:
                return []
            f.seek(self._marks[start // self.STEP])
            for _ in range(start % self.STEP):
                f.readline()
            events: list[LogEvent] = []
            for _ in range(stop - start):
                events.append(parse(f.readline(), events[-1].timestamp if events else 0))
        return events


@dataclass(frozen=True)
class _Segment:
    first: int  # the index of the file's first event
    file: EventFile
    handle: BinaryIO


class StreamFiles:
    """A stream's files read as one sequence of events at absolute positions.

    A read works on one snapshot of the files, each opened once, taken while no rotation happened
    (`_open`): an open file keeps its content when the writer renames it, so the positions a read
    returns go with the events it returns and never go backwards.
    """

    def __init__(self, live: Path):
        self.live = live
        # By first index, which names one file for good: a new live file begins at a new index
        # (while it may get the inode of a file just deleted), the rotated file keeps the live one's.
        self._files: dict[int, EventFile] = {}
        self._lock = threading.Lock()

    def read(self, start: int, limit: int) -> tuple[list[LogEvent], int]:
        """As `LogSource.events`: a start before the oldest kept event begins at the oldest."""
        parts = self._snapshot()
        try:
            return self._read(parts, start, limit)
        finally:
            for part in parts:
                part.handle.close()

    def _read(self, parts: list[_Segment], start: int, limit: int) -> tuple[list[LogEvent], int]:
        if not parts:
            return [], 0
        # A file ends where the next begins; the last one where its counted lines end.
        ends = [part.first for part in parts[1:]] + [parts[-1].first + parts[-1].file.count(parts[-1].handle)]
        oldest, end = parts[0].first, ends[-1]
        position = max(oldest, end + start) if start < 0 else min(max(start, oldest), end)
        events: list[LogEvent] = []
        for part, part_end in zip(parts, ends, strict=True):
            if len(events) >= limit:
                break
            if position >= part_end:
                continue
            stop = min(part_end, position + limit - len(events))
            got = part.file.read(part.handle, position - part.first, stop - part.first)
            events += got
            position += len(got)
        return events, position

    def _snapshot(self) -> list[_Segment]:
        # A rotation is a rename, then a new live file: rare next to reads, and over in a moment, so
        # a read that saw one simply looks again. Only a file that cannot be opened at all fails each try.
        for _ in range(SNAPSHOT_TRIES):
            opened = self._open(rotated(self.live))
            if opened is not None:
                break
        else:
            raise OSError(f"The log files {self.live}* cannot be read (a file there is unreadable or a dangling "
                          "link); make them readable by the server, or remove the broken one.")
        with self._lock:
            if opened:  # forget the files rotated away
                self._files = {first: file for first, file in self._files.items() if first >= opened[0][0]}
            parts = [_Segment(first, self._files.setdefault(first, EventFile()), handle) for first, handle in opened]
        return parts

    def _open(self, listed: list[tuple[int, Path]]) -> list[tuple[int, BinaryIO]] | None:
        """The `listed` rotated files and the live file, open, with their first indexes; None when
        the writer rotated since `listed` was read (it then names a newer rotated file)."""
        opened: list[tuple[int, BinaryIO]] = []
        try:
            for first, path in listed:
                opened.append((first, open(path, "rb")))
            try:
                live = open(self.live, "rb")
            except FileNotFoundError:
                live = None  # between a rotation and the next append
            if live is not None:
                opened.append((self._live_first(opened), live))
            if rotated(self.live)[-1:] == listed[-1:]:
                return opened
        except OSError:
            pass  # rotated away (the oldest deleted since it was listed), or unreadable
        for _, handle in opened:
            handle.close()
        return None

    def _live_first(self, opened: list[tuple[int, BinaryIO]]) -> int:
        if not opened:
            return 0
        first, handle = opened[-1]
        with self._lock:
            file = self._files.setdefault(first, EventFile())
        return first + file.count(handle)

    def size(self) -> int:
        total = 0
        for path in [path for _, path in rotated(self.live)] + [self.live]:
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total


def parse(line: bytes, previous: int) -> LogEvent:
    """One stored event; a line damaged by a crash mid-write is kept as text, not lost or fatal."""
    try:
        entry = json.loads(line)
        return LogEvent(int(entry["t"]), str(entry["m"]))
    except (ValueError, KeyError, TypeError):
        return LogEvent(previous, line.decode(errors="replace").rstrip("\n"))
