"""Transfer progress for the terminal: per-layer rich bars on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import threading

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class RichTransferProgress:
    def __init__(self, console: Console):
        self._progress = Progress(
            TextColumn("{task.fields[digest]}"), TextColumn("{task.description}"), BarColumn(),
            DownloadColumn(), TransferSpeedColumn(), console=console, transient=False,
        )
        self._tasks: dict[str, int] = {}
        self._sizes: dict[str, int] = {}

    def __enter__(self):
        self._progress.start()
        return self

    def __exit__(self, *exc):
        self._progress.stop()

    def start(self, digest: str, size: int, what: str) -> None:
        self._tasks[digest] = self._progress.add_task(what, total=size, digest=short(digest))
        self._sizes[digest] = size

    def advance(self, digest: str, nbytes: int) -> None:
        self._progress.advance(self._tasks[digest], nbytes)

    def finish(self, digest: str, status: str) -> None:
        self._progress.update(self._tasks[digest], completed=self._sizes[digest], description=status)

    def retrying(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)  # above the bars, which stay


class PlainTransferProgress:
    """One line when a blob starts and one when it ends: readable in logs and CI output."""

    def __init__(self, stream=sys.stderr):
        self._stream = stream
        self._lock = threading.Lock()
        self._what: dict[str, str] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def _say(self, text: str) -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def start(self, digest: str, size: int, what: str) -> None:
        self._what[digest] = what
        self._say(f"{short(digest)} {what}: {size} bytes")

    def advance(self, digest: str, nbytes: int) -> None:
        pass

    def finish(self, digest: str, status: str) -> None:
        self._say(f"{short(digest)} {self._what.get(digest, '')}: {status}")

    def retrying(self, message: str) -> None:
        self._say(message)


def transfer_progress(console: Console | None = None):
    console = console or Console(stderr=True)
    if console.is_terminal:
        return RichTransferProgress(console)
    return PlainTransferProgress()
