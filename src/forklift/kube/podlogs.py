"""A pod container's log copied into a local file, line by line, resumable after a restart.

The API server is asked for timestamped lines; the newest timestamp copied is kept beside the file
(`<file>.since`), so a follower started again (a restarted server re-adopting the pod) skips what is
already there. Lines are bounded: a longer one is cut, so one endless line cannot fill memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from forklift.kube.cluster import Cluster

log = logging.getLogger(__name__)
MAX_LINE = 256 * 1024
RETRY_SECONDS = 1.0
ATTEMPTS_AFTER_END = 5  # an ended container's log may take a moment to be served


def split_timestamp(line: str) -> tuple[str, str]:
    """("2026-12-03T12:00:00.123456789Z", "text") from a line the API server timestamped."""
    stamp, _, text = line.partition(" ")
    if stamp[:4].isdigit() and stamp.endswith("Z") and len(stamp) >= 20:
        # RFC 3339 with its fraction trimmed of zeros: padded to nanoseconds, the strings sort as the times do
        seconds, _, fraction = stamp[:-1].partition(".")
        return f"{seconds}.{fraction:0<9}Z", text
    return "", line


class PodLogFollower:
    def __init__(self, cluster: Cluster, pod: str, container: str, path: Path, finished: Callable[[], bool]):
        """`finished()` says the container has ended, so a stream that ends is the end of its log."""
        self.cluster, self.pod, self.container, self.path = cluster, pod, container, path
        self.finished = finished
        self.since_file = path.with_name(path.name + ".since")
        self._stop = threading.Event()
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"kube-log-{self.pod}")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following; waits up to `timeout` for the copy in progress."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def finish(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the copy of an ended container's log to complete."""
        self.done.wait(timeout)
        self.stop(1.0)

    def _last(self) -> str:
        try:
            return self.since_file.read_text().strip()
        except OSError:
            return ""

    def _run(self) -> None:
        failures_after_end = 0
        try:
            while not self._stop.is_set():
                ended_before = self.finished()
                try:
                    self._copy()
                except Exception as exc:  # noqa: BLE001 - not there yet, a dropped stream: ask again
                    log.debug("log of pod %s: %s", self.pod, exc)
                    if ended_before:
                        failures_after_end += 1
                        if failures_after_end < ATTEMPTS_AFTER_END:
                            self._stop.wait(RETRY_SECONDS / 2)
                            continue
                if ended_before:
                    return  # the whole log of an ended container has been read (or cannot be)
                self._stop.wait(RETRY_SECONDS)
        finally:
            self.done.set()

    def _copy(self) -> None:
        last = self._last()
        response = self.cluster.pod_log(self.pod, self.container, follow=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pending = b""
        try:
            with open(self.path, "ab") as out:
                for chunk in response.stream(64 * 1024):
                    pending += chunk
                    lines = pending.split(b"\n")
                    pending = lines.pop()
                    if len(pending) > MAX_LINE:
                        lines.append(pending[:MAX_LINE])
                        pending = b""
                    last = self._write(out, lines, last)
                    if self._stop.is_set():
                        return
                if pending:
                    last = self._write(out, [pending], last)
        finally:
            response.release_conn()

    def _write(self, out: BinaryIO, lines: list[bytes], last: str) -> str:
        newest = last
        for raw in lines:
            stamp, text = split_timestamp(raw.decode("utf-8", "replace"))
            if stamp and last and stamp <= last:
                continue  # copied before a restart
            out.write(text[:MAX_LINE].encode() + b"\n")
            newest = max(newest, stamp)
        out.flush()
        if newest != last:
            self.since_file.write_text(newest)
        return newest
