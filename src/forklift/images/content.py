"""Content-addressed blob store: `blobs/sha256/<hex>`, shared by every image.

Blobs are written to `blobs/ingest/<hex>.partial` (kept across runs, so a download resumes), verified,
then renamed into place. A per-digest file lock makes concurrent pulls of images that share layers —
in one process or several — download each blob once.

Leases (`blobs/leases/*.lease`, as containerd has them) keep blobs that a pull or a build is writing
from `images prune` until the image record that refers to them lands. A lease file lists digests,
one a line, and is locked by its writer for as long as the lease lives: a lease whose lock is free
belongs to a process that ended without releasing it, and prune removes it. Taking a lease, adding
to one, and releasing one hold `blobs/gc.lock` shared; prune holds it exclusive while it sweeps, so
a writer adds a digest either before the sweep looks (kept) or after it ends (then finds the blob
gone and fetches it again).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Self

from forklift.atomicfile import write_atomically
from forklift.fslock import POLL, acquire, locked, open_lock_file
from forklift.images.errors import ImageError

Fetch = Callable[[Path], Awaitable[None]]


class BlobNotFound(ImageError, KeyError):
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
        self._leases = root / "leases"
        self._gc_lock = root / "gc.lock"
        (root / "sha256").mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)
        self._leases.mkdir(parents=True, exist_ok=True)

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

    # -- leases -------------------------------------------------------------------------------
    def lease(self, *digests: str) -> Lease:
        """A new lease holding `digests` (more with `Lease.add`); release it once a record refers to them."""
        for digest in digests:
            _split(digest)
        name = f"{os.getpid()}-{secrets.token_hex(8)}.lease"
        with locked(self._gc_lock, shared=True):
            fd = os.open(self._leases / name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
            acquire(fd)  # held until release(), or until this process ends
            os.write(fd, "".join(f"{digest}\n" for digest in digests).encode())
        return Lease(self, self._leases / name, fd)

    def abandoned_leases(self) -> list[Path]:
        """Leases whose writer ended without releasing them (what `collecting` removes)."""
        with locked(self._gc_lock, shared=True):  # a lease being taken is whole and locked once this is ours
            return [path for path, _ in self._scan_leases() if path is not None]

    @contextmanager
    def collecting(self) -> Iterator[set[str]]:
        """For a sweep: hold off every lease change for the block and yield the digests live leases
        hold. Leases of processes that ended without releasing them are removed."""
        with locked(self._gc_lock):
            leased: set[str] = set()
            for abandoned, digests in self._scan_leases():
                if abandoned is not None:
                    abandoned.unlink(missing_ok=True)
                leased.update(digests)
            yield leased

    def _scan_leases(self) -> Iterator[tuple[Path | None, list[str]]]:
        """Each lease file: (its path, []) when nobody holds it (its writer is gone), else (None, the
        digests it holds). The caller holds the gc lock."""
        for path in self._leases.glob("*.lease"):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if acquire(fd, blocking=False):
                    yield path, []
                    continue
                with os.fdopen(os.dup(fd), "rb") as f:
                    yield None, [line for line in f.read().decode().split("\n") if line]
            finally:
                os.close(fd)

    # -- writing ------------------------------------------------------------------------------
    def put_bytes(self, data: bytes, lease: Lease | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if lease is not None:
            lease.add(digest)
        if not self.has(digest):
            write_atomically(self.path(digest), data, mode=0o600, tmp_dir=self._ingest)
        return digest

    @contextmanager
    def writer(self, lease: Lease | None = None) -> Iterator[BlobWriter]:
        """Write a new blob of unknown digest; committed under its sha256 when the block ends."""
        writer = BlobWriter(self, lease)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    async def ensure(self, digest: str, fetch: Fetch) -> tuple[Path, bool]:
        """Make sure `digest` is stored, calling `fetch(partial_path)` at most once across all pullers.

        `fetch` must write and verify the blob at the path it is given (resuming from what is there).
        Returns (path, fetched) where fetched is False when the blob was already present. A puller
        that prune must not race holds a lease on `digest` before calling this.
        """
        final = self.path(digest)
        if final.exists():
            return final, False
        fd = open_lock_file(self._ingest / f"{_split(digest)[1]}.lock")
        try:
            # Polled, not waited for in a thread: a cancelled pull leaves no thread holding the lock.
            while not acquire(fd, blocking=False):
                await asyncio.sleep(POLL)
            if final.exists():
                return final, False
            partial = self._ingest / f"{_split(digest)[1]}.partial"
            await fetch(partial)
            os.replace(partial, final)
            return final, True
        finally:
            os.close(fd)


class Lease:
    """Blobs being written, kept from prune until `release()` (or the end of the `with` block)."""

    def __init__(self, store: BlobStore, path: Path, fd: int):
        self._store = store
        self.path = path
        self._fd: int | None = fd

    def add(self, *digests: str) -> None:
        """Hold `digests` too; call before writing them (or finding them already stored)."""
        for digest in digests:
            _split(digest)
        if self._fd is None:
            raise RuntimeError("the lease was released")
        with locked(self._store._gc_lock, shared=True):
            os.write(self._fd, "".join(f"{digest}\n" for digest in digests).encode())

    def release(self) -> None:
        if self._fd is None:
            return
        with locked(self._store._gc_lock, shared=True):
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


class BlobWriter:
    """A file-like sink that hashes what it is given."""

    def __init__(self, store: BlobStore, lease: Lease | None = None):
        self._store = store
        self._lease = lease
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
        if self._lease is not None:
            self._lease.add(self.digest)
        os.replace(self._file.name, self._store.path(self.digest))
        return self.digest

    def abort(self) -> None:
        self._file.close()
        with suppress(FileNotFoundError):
            os.unlink(self._file.name)
