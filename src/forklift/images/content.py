"""Content-addressed blob store: `blobs/sha256/<hex>`, shared by every image.

Blobs are written to `blobs/ingest/<hex>.partial` (kept across runs, so a download resumes), verified,
then renamed into place. A per-digest file lock makes concurrent pulls of images that share layers —
in one process or several — download each blob once.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Fetch = Callable[[Path], Awaitable[None]]


class BlobNotFound(KeyError):
    def __str__(self) -> str:
        return f"blob {self.args[0]} is not in the local store"


def _split(digest: str) -> tuple[str, str]:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise ValueError(f"unsupported digest '{digest}': expected sha256:<64 lowercase hex>")
    return algorithm, hexdigest


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self._ingest = root / "ingest"
        (root / "sha256").mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        algorithm, hexdigest = _split(digest)
        return self.root / algorithm / hexdigest

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def read_bytes(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def digests(self) -> Iterator[str]:
        for entry in (self.root / "sha256").iterdir():
            yield f"sha256:{entry.name}"

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    # -- writing ------------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            with tempfile.NamedTemporaryFile(dir=self._ingest, delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, self.path(digest))
        return digest

    @contextmanager
    def writer(self) -> Iterator["BlobWriter"]:
        """Write a new blob of unknown digest; committed under its sha256 when the block ends."""
        writer = BlobWriter(self)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    async def ensure(self, digest: str, fetch: Fetch) -> tuple[Path, bool]:
        """Make sure `digest` is stored, calling `fetch(partial_path)` at most once across all pullers.

        `fetch` must write and verify the blob at the path it is given (resuming from what is there).
        Returns (path, fetched) where fetched is False when the blob was already present.
        """
        final = self.path(digest)
        if final.exists():
            return final, False
        lock_fd = await asyncio.to_thread(self._lock, digest)
        try:
            if final.exists():
                return final, False
            partial = self._ingest / f"{_split(digest)[1]}.partial"
            await fetch(partial)
            os.replace(partial, final)
            return final, True
        finally:
            os.close(lock_fd)

    def _lock(self, digest: str) -> int:
        fd = os.open(self._ingest / f"{_split(digest)[1]}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


class BlobWriter:
    """A file-like sink that hashes what it is given."""

    def __init__(self, store: BlobStore):
        self._store = store
        self._file = tempfile.NamedTemporaryFile(dir=store._ingest, delete=False)
        self._hasher = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._hasher.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._file.flush()

    def commit(self) -> str:
        self._file.close()
        self.digest = "sha256:" + self._hasher.hexdigest()
        os.replace(self._file.name, self._store.path(self.digest))
        return self.digest

    def abort(self) -> None:
        self._file.close()
        os.unlink(self._file.name)
