"""What the CloudWatch Logs subset reads: a `LogSource` the control plane implements, and its types.

Groups are named like AWS's (`/aws/sagemaker/TrainingJobs`, `/aws/sagemaker/Endpoints/<name>`),
streams like `<job>/algo-1-<epoch>`. Times are epoch milliseconds. The source only answers three
questions; ordering, filtering by time, pagination and tokens are the API's business.

Implementations may return their own objects: only the attributes below are read. The control
plane's source is a `MergedLogSource` of `forklift.control.logs.TrainingLogSource`
(`/aws/sagemaker/TrainingJobs`) and `forklift.control.inference.logs.EndpointLogSource` (every
`/aws/sagemaker/Endpoints/<name>`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class GroupInfo:
    name: str
    creation_time: int  # epoch ms


@dataclass(frozen=True)
class StreamInfo:
    name: str
    creation_time: int  # epoch ms
    first_event_timestamp: int | None = None
    last_event_timestamp: int | None = None
    last_ingestion_time: int | None = None
    stored_bytes: int = 0


@dataclass(frozen=True)
class LogEvent:
    timestamp: int  # epoch ms, when the line was produced
    message: str
    ingestion_time: int | None = None  # epoch ms, when forklift stored it (defaults to timestamp)


@runtime_checkable
class LogSource(Protocol):
    def groups(self, prefix: str | None) -> Sequence[GroupInfo]:
        """Every log group whose name starts with `prefix` (all when None)."""
        ...

    def streams(self, group: str, prefix: str | None) -> Sequence[StreamInfo] | None:
        """The group's streams whose name starts with `prefix`; None when the group does not exist."""
        ...

    def events(self, group: str, stream: str, start_index: int, limit: int) -> tuple[Sequence[LogEvent], int] | None:
        """Up to `limit` events of a stream from position `start_index`, oldest first.

        Positions are 0-based in the stream's append order. A negative `start_index` counts from the
        end, like a Python list index (`-10` = the last ten). Returns `(events, next_index)` where
        `next_index` is the absolute position after the last event returned (so the first one was
        at `next_index - len(events)`); None when the group or stream does not exist.
        """
        ...


class NoLogs:
    """A LogSource with no groups: every lookup is ResourceNotFoundException, as the SDK expects."""

    def groups(self, prefix: str | None) -> Sequence[GroupInfo]:
        return []

    def streams(self, group: str, prefix: str | None) -> Sequence[StreamInfo] | None:
        return None

    def events(self, group: str, stream: str, start_index: int, limit: int) -> tuple[Sequence[LogEvent], int] | None:
        return None


class MemoryLogSource:
    """A thread-safe in-memory LogSource (tests, and a reference for implementations)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, GroupInfo] = {}
        self._streams: dict[str, dict[str, StreamInfo]] = {}
        self._events: dict[tuple[str, str], list[LogEvent]] = {}

    def create_group(self, group: str, creation_time: int = 0) -> None:
        with self._lock:
            self._groups.setdefault(group, GroupInfo(group, creation_time))
            self._streams.setdefault(group, {})

    def create_stream(self, group: str, stream: str, creation_time: int = 0) -> None:
        self.create_group(group, creation_time)
        with self._lock:
            self._streams[group].setdefault(stream, StreamInfo(stream, creation_time))
            self._events.setdefault((group, stream), [])

    def append(self, group: str, stream: str, *events: LogEvent) -> None:
        self.create_stream(group, stream, events[0].timestamp if events else 0)
        with self._lock:
            stored = self._events[(group, stream)]
            stored.extend(events)
            info = self._streams[group][stream]
            self._streams[group][stream] = replace(
                info,
                first_event_timestamp=stored[0].timestamp if stored else None,
                last_event_timestamp=stored[-1].timestamp if stored else None,
                last_ingestion_time=max((e.ingestion_time or e.timestamp) for e in stored) if stored else None,
                stored_bytes=info.stored_bytes + sum(len(e.message.encode()) for e in events),
            )

    def groups(self, prefix: str | None) -> Sequence[GroupInfo]:
        with self._lock:
            return [g for name, g in self._groups.items() if name.startswith(prefix or "")]

    def streams(self, group: str, prefix: str | None) -> Sequence[StreamInfo] | None:
        with self._lock:
            streams = self._streams.get(group)
            if streams is None:
                return None
            return [s for name, s in streams.items() if name.startswith(prefix or "")]

    def events(self, group: str, stream: str, start_index: int, limit: int) -> tuple[Sequence[LogEvent], int] | None:
        with self._lock:
            stored = self._events.get((group, stream))
            if stored is None:
                return None
            start = max(0, len(stored) + start_index) if start_index < 0 else min(start_index, len(stored))
            chunk = stored[start:start + max(0, limit)]
            return chunk, start + len(chunk)


class MergedLogSource:
    """Several LogSources behind one; `owners` maps a group-name prefix to the source owning it."""

    def __init__(self, owners: dict[str, LogSource]):
        self.owners = owners

    def _owner(self, group: str) -> LogSource | None:
        # the longest matching prefix wins, so a more specific owner may sit beside a general one
        matching = [prefix for prefix in self.owners if group.startswith(prefix)]
        return self.owners[max(matching, key=len)] if matching else None

    def groups(self, prefix: str | None) -> Sequence[GroupInfo]:
        found: dict[str, GroupInfo] = {}
        for source in self.owners.values():
            for group in source.groups(prefix):
                found.setdefault(group.name, group)
        return sorted(found.values(), key=lambda g: g.name)

    def streams(self, group: str, prefix: str | None) -> Sequence[StreamInfo] | None:
        owner = self._owner(group)
        return owner.streams(group, prefix) if owner is not None else None

    def events(self, group: str, stream: str, start_index: int, limit: int) -> tuple[Sequence[LogEvent], int] | None:
        owner = self._owner(group)
        return owner.events(group, stream, start_index, limit) if owner is not None else None
