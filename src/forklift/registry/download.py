"""Blob downloads: streamed to disk, sha256 verified on the fly, resumed with Range after a drop.

This part runs in worker threads: TLS decryption, hashing and file writes all release the GIL, so
parallel layer downloads use every core (measured: ~1.5x faster than the same transfers multiplexed
on one event loop). Bodies are read through `directget` when the auth flow already holds the header
for the request; otherwise, and for anything unusual, through the synchronous httpx client.

A stall (no byte for `registry_read_timeout_seconds`) or a drop is retried from where it stopped
within the retry budget, which starts again whenever bytes arrive; the whole download also has a
deadline from the blob's size (`Timeouts.blob_deadline`), so a drip cannot hold a pull forever.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from forklift.errors import is_disk_full
from forklift.fslock import acquire
from forklift.registry.directget import DirectResponse, direct_get, proxies_configured
from forklift.registry.errors import (
    DigestMismatch,
    RegistryError,
    RegistryServerError,
    RegistryStalled,
    TokenServerFailed,
    short_reason,
)
from forklift.registry.manifest import Descriptor
from forklift.registry.retry import Attempts, RetryPolicy
from forklift.registry.timeouts import MIN_BLOB_RATE, Phase, Timeouts

READ_BLOCK = 1024 * 1024
WRITER_POLL = 0.05  # seconds between tries for a partial file a stopped pull's thread still holds
Progress = Callable[[int], None]


@dataclass(frozen=True)
class BlobDownload:
    http: httpx.Client
    url: httpx.URL
    descriptor: Descriptor
    registry: str
    policy: RetryPolicy
    timeouts: Timeouts
    to_error: Callable[[httpx.Response], RegistryError]  # maps a failed response to a typed error
    # maps a connection-level failure, saying how long it was retried
    transport_error: Callable[[BaseException, Attempts], RegistryError]
    retrying: Callable[[str, Attempts, float], None]  # tells (why, the attempts, the wait) before a wait
    # (known, Authorization header) the auth flow holds for a URL; None disables the direct path
    cached_authorization: Callable[[httpx.URL], tuple[bool, str | None]] | None = None
    ssl_context: ssl.SSLContext | None = None
    cancelled: threading.Event | None = None  # set when the task is cancelled: a retry wait ends at once

    @property
    def what(self) -> str:
        return f"blob {self.descriptor.digest}"

    def run(self, dest: Path, progress: Progress | None = None) -> None:
        """Write the blob to `dest`, resuming from the bytes already there. A bad digest deletes `dest`."""
        self._check_cancelled()
        # One writer per partial file: a stopped pull's thread can outlive the store's per-digest lock,
        # so the next download waits until that thread has let go of the file before reading it.
        writer = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while not acquire(writer, blocking=False):
                self._check_cancelled()
                time.sleep(WRITER_POLL)
            self._run_locked(dest, progress)
        finally:
            os.close(writer)  # releases the lock

    def _run_locked(self, dest: Path, progress: Progress | None) -> None:
        descriptor = self.descriptor
        state = _Progressive(hashlib.sha256())
        state.offset = _hash_existing(dest, state.hasher, descriptor.size)
        if state.offset and progress:
            progress(state.offset)
        state.deadline = time.monotonic() + self.timeouts.blob_deadline(descriptor.size, self.policy.budget)
        try:
            self._fetch(dest, state, progress)
        except _LocalWriteFailed as exc:  # the disk, not the registry: another attempt would not help
            raise exc.error from None
        actual = "sha256:" + state.hasher.hexdigest()
        offset = state.offset
        if offset > descriptor.size:
            dest.unlink(missing_ok=True)
            raise DigestMismatch(
                f"{self.what} from {self.registry} is longer than the {descriptor.size} bytes its descriptor "
                "gives; reading stopped there and the blob is refused", registry=self.registry)
        if offset != descriptor.size or actual != descriptor.digest:
            dest.unlink(missing_ok=True)
            raise DigestMismatch(
                f"{self.what} from {self.registry}: got {offset} bytes with digest {actual}, expected "
                f"{descriptor.size} bytes with digest {descriptor.digest}", registry=self.registry)
        # The hash is of the bytes as they arrived; a file of another size was written to by someone else.
        on_disk = dest.stat().st_size
        if on_disk != descriptor.size:
            dest.unlink(missing_ok=True)
            raise DigestMismatch(
                f"{self.what} from {self.registry} arrived whole but {dest} holds {on_disk} bytes, not "
                f"{descriptor.size}: something else wrote to it; the partial download is deleted, pull again",
                registry=self.registry)

    def _check_cancelled(self) -> None:
        if self.cancelled is not None and self.cancelled.is_set():
            raise RegistryError(f"the download of {self.what} was cancelled", registry=self.registry)

    def _fetch(self, dest: Path, state: _Progressive, progress: Progress | None) -> None:
        """Attempts until the body is on disk (verified by `run`), or the error that ends them."""
        descriptor = self.descriptor
        attempts = self.policy.attempts()
        while True:
            offset = state.offset
            state.check_deadline(self)
            self._check_cancelled()
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                if self._try_direct(dest, state, headers, progress):
                    break
            except (OSError, http.client.HTTPException) as exc:
                if is_disk_full(exc):
                    raise  # the write here failed, not the registry: another attempt fails the same way
                self._after_failure(exc, attempts, state, offset)
                continue
            state.waiting = "first_byte"
            try:
                extensions = self.timeouts.for_head()
                with self.http.stream("GET", self.url, headers=headers, extensions=extensions) as response:
                    state.waiting = "read"
                    self.timeouts.for_body(response)
                    status = response.status_code
                    if status == 416 and offset == descriptor.size:
                        break
                    if attempts.retries_status(status):
                        self._pause(attempts, f"answered {status}", response)
                        continue
                    if status == 200 and offset:
                        if progress:
                            progress(-offset)
                        state.restart()  # the server ignored Range: start over
                    elif status == 206:
                        if not response.headers.get("content-range", "").startswith(f"bytes {offset}-"):
                            raise RegistryServerError(f"{self.registry} answered a resumed download of {self.what} "
                                                      "with the wrong range", registry=self.registry)
                    elif status != 200:
                        response.read()
                        raise self.to_error(response)
                    self._write(response, dest, state, progress)
                break
            except (httpx.TransportError, httpx.StreamError) as exc:
                self._after_failure(self.timeouts.explain(exc, state.waiting), attempts, state, offset)
            except TokenServerFailed as exc:
                if not attempts.retries_status(exc.response.status_code):
                    raise TokenServerFailed(f"{exc}{attempts.given_up()}", registry=self.registry,
                                            response=exc.response) from None
                self._pause(attempts, f"its token server answered {exc.response.status_code}", exc.response)

    def _try_direct(self, dest: Path, state: _Progressive, headers: dict[str, str], progress: Progress | None) -> bool:
        """Download through http.client when it can be done simply; False hands over to httpx."""
        if self.cached_authorization is None or self.ssl_context is None or proxies_configured():
            return False
        known, authorization = self.cached_authorization(self.url)
        if not known:
            return False
        sent = {**headers, "User-Agent": self.http.headers.get("User-Agent", "forklift"), "Accept-Encoding": "identity"}
        if authorization:
            sent["Authorization"] = authorization
        response = direct_get(self.url, sent, self.ssl_context, self.timeouts, state.deadline)
        try:
            offset = state.offset
            if response.status == 416 and offset == self.descriptor.size:
                return True
            if response.status == 200 and offset:
                return False  # the server ignored Range: let the general path start over
            if response.status == 206 and not response.headers.get("content-range", "").startswith(f"bytes {offset}-"):
                return False
            if response.status not in (200, 206):
                return False  # errors, retries and re-authentication are the general path's job
            self._write_direct(response, dest, state, progress)
            return True
        finally:
            response.close()

    def _write_direct(self, response: DirectResponse, dest: Path, state: _Progressive,
                      progress: Progress | None) -> None:
        buffer = memoryview(bytearray(READ_BLOCK))
        length = response.headers.get("content-length")
        expected_end = state.offset + int(length) if length and length.isdigit() else None
        with _opened(dest, state, self._check_cancelled) as out:
            # A block is kept once whole: a stall or a drop loses at most the one being read, and the
            # resume starts after the last whole block (a shorter read would lose http.client's speed).
            # At most one byte past the descriptor's size is ever read: enough to know the blob is longer.
            while count := response.readinto(buffer[: min(READ_BLOCK, self.descriptor.size - state.offset + 1)]):
                chunk = buffer[:count]
                _write_local(out, chunk, self._check_cancelled)
                state.hasher.update(chunk)
                state.offset += count
                if progress:
                    progress(count)
                if state.offset > self.descriptor.size:
                    return  # more than announced: stop reading; `run` refuses it
                state.check_deadline(self)
        # http.client ends a body cut short without complaint; a short read is a dropped connection.
        if expected_end is not None and state.offset < expected_end:
            raise http.client.IncompleteRead(b"", expected_end - state.offset)

    def _write(self, response: httpx.Response, dest: Path, state: _Progressive, progress: Progress | None) -> None:
        # `state` advances chunk by chunk, so a drop mid-stream leaves it matching the file for the resume.
        with _opened(dest, state, self._check_cancelled) as out:
            for chunk in response.iter_raw():
                room = self.descriptor.size - state.offset
                if len(chunk) > room:  # more than announced: keep nothing past the size, stop; `run` refuses it
                    _write_local(out, chunk[:room], self._check_cancelled)
                    state.offset += len(chunk)
                    break
                _write_local(out, chunk, self._check_cancelled)
                state.hasher.update(chunk)
                state.offset += len(chunk)
                if progress:
                    progress(len(chunk))
                state.check_deadline(self)

    def _after_failure(self, exc: BaseException, attempts: Attempts, state: _Progressive, offset: int) -> None:
        """Wait before the next attempt, or raise the error that ends the download."""
        if state.offset > offset:
            attempts.progressed()
        state.check_deadline(self)
        if not attempts.retries_error(exc):
            raise self._give_up(exc, attempts) from None
        self._pause(attempts, short_reason(exc))

    def _give_up(self, exc: BaseException, attempts: Attempts) -> RegistryError:
        """The error for a failure that is not retried (or no longer): a connection-level failure
        (TLS, DNS, refused, timed out) as the client reports them; a cut body as a failed download."""
        if isinstance(exc, (httpx.TransportError, OSError)):
            return self.transport_error(exc, attempts)
        return RegistryServerError(f"download of {self.what} from {self.registry} failed: {exc}{attempts.given_up()}",
                                   registry=self.registry)

    def _pause(self, attempts: Attempts, why: str, response: httpx.Response | None = None) -> None:
        delay = attempts.delay(response)
        self.retrying(why, attempts, delay)
        if self.cancelled is not None:
            self.cancelled.wait(delay)
        else:
            time.sleep(delay)


class _Progressive:
    """Bytes on disk so far and their running hash."""

    def __init__(self, hasher: hashlib._Hash):
        self.hasher = hasher
        self.offset = 0
        self.deadline = float("inf")  # time.monotonic() by which the whole blob must be in
        self.waiting: Phase = "first_byte"  # what a read timeout from httpx stands for just now

    def check_deadline(self, download: BlobDownload) -> None:
        if time.monotonic() <= self.deadline:
            return
        size = download.descriptor.size
        raise RegistryStalled(
            f"the download of {download.what} from {download.registry} is too slow: {self.offset} of {size} bytes "
            f"arrived in the time allowed for its size (the registry timeouts and registry_retry_seconds, plus "
            f"{MIN_BLOB_RATE >> 10} KiB/s); check the registry or the network to it", registry=download.registry)

    def restart(self) -> None:
        self.hasher, self.offset = hashlib.sha256(), 0


class _LocalWriteFailed(Exception):  # noqa: N818 - carries the disk's OSError past the network's handlers
    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _opened:  # noqa: N801 - used as `with _opened(...)`
    """`dest` opened for writing from `state.offset`; a failure of the disk is a _LocalWriteFailed."""

    def __init__(self, dest: Path, state: _Progressive, check_cancelled: Callable[[], None]):
        self.dest, self.state, self.check_cancelled = dest, state, check_cancelled

    def __enter__(self) -> BinaryIO:
        try:
            # Opened without truncating: a download cancelled meanwhile must leave the file as it is.
            fd = os.open(self.dest, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self.file = os.fdopen(fd, "r+b")
        except OSError as exc:
            raise _LocalWriteFailed(exc) from exc
        try:
            self.check_cancelled()
            self.file.seek(self.state.offset)
            self.file.truncate()
        except OSError as exc:
            self.file.close()
            raise _LocalWriteFailed(exc) from exc
        except BaseException:
            self.file.close()
            raise
        return self.file

    def __exit__(self, *exc: object) -> None:
        try:
            self.file.close()
        except OSError as error:
            raise _LocalWriteFailed(error) from error


def _write_local(out: BinaryIO, chunk: bytes | memoryview, check_cancelled: Callable[[], None]) -> None:
    check_cancelled()  # a stopped pull's thread writes nothing more, whatever arrives
    try:
        out.write(chunk)
    except OSError as exc:
        raise _LocalWriteFailed(exc) from exc


def _hash_existing(path: Path, hasher: hashlib._Hash, expected_size: int) -> int:
    """Feed a partial download into `hasher`; returns its length (0 when absent or longer than the blob)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0 or size > expected_size:
        return 0
    with open(path, "rb") as existing:
        while block := existing.read(READ_BLOCK):
            hasher.update(block)
    return size
