"""How image transfers report progress: a small protocol the CLI renders (rich bars or plain lines).

`retrying` hears, in a sentence, that the registry is failing and forklift is waiting it out (it
may come from a download thread); the next `advance` means it is over.
"""

from __future__ import annotations

from typing import Protocol


class TransferProgress(Protocol):
    def start(self, digest: str, size: int, what: str) -> None: ...
    def advance(self, digest: str, nbytes: int) -> None: ...
    def finish(self, digest: str, status: str) -> None: ...  # "downloaded", "cached", "uploaded", "exists", "mounted"
    def retrying(self, message: str) -> None: ...


class NoProgress:
    def start(self, digest: str, size: int, what: str) -> None:
        pass

    def advance(self, digest: str, nbytes: int) -> None:
        pass

    def finish(self, digest: str, status: str) -> None:
        pass

    def retrying(self, message: str) -> None:
        pass
