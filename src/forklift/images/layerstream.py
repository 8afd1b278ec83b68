"""Read a layer blob as one stream of tar members: decompress (gzip, zstd or none), hash, parse.

A background thread reads the blob, decompresses it and feeds the diff_id hash, so decompression
and hashing (which release the GIL) overlap with the caller creating files. `tarfile` in stream
mode ("r|") parses the headers; only its parser is used, never its extraction.

tarfile reads a PAX header, a GNU long name and a sparse map whole into memory, whatever size the
header claims; so while it parses headers the stream lets it have at most `MAX_HEADER_BYTES` (as
Go's archive/tar allows for these records) and raises `HeaderTooLarge` past that.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import tarfile
import threading
import zlib
from collections.abc import Iterator
from typing import IO, BinaryIO, Self, cast

import zstandard

from forklift.images.errors import ImageError

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20  # blob bytes per read, and file-content bytes per read from the tar
_CHUNK = 256 << 10  # decompressed bytes (at least) per chunk handed over by the reader thread
_OUT_MAX = 1 << 20  # decompressed bytes per zlib call, which bounds memory against bombs
_TAR_BUFSIZE = 32 << 10  # tarfile's stream buffer: small keeps its per-header copying cheap
MAX_HEADER_BYTES = 1 << 20  # PAX records, GNU long names and sparse maps of one entry
# What tarfile may read while parsing one entry's headers: the records, the 512-byte headers
# around them and what its buffer reads ahead.
_HEADER_READ_MAX = MAX_HEADER_BYTES + _TAR_BUFSIZE + 4 * tarfile.BLOCKSIZE

class HeaderTooLarge(ImageError):
    """An entry's tar headers (PAX records, GNU long name or sparse map) exceed MAX_HEADER_BYTES."""


# Errors that mean the blob is not a valid (compressed) tar.
FORMAT_ERRORS = (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError)


def sniff_compression(head: bytes, media_type: str) -> str:
    """'gzip', 'zstd' or 'tar' from the first bytes; the magic wins over the media type."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith((b"BZh", b"\xfd7zXZ\x00")):
        raise ValueError("bzip2/xz compressed layers are not supported")
    if media_type.endswith(("gzip", "zstd")):
        log.debug("media type %s but no compression magic; reading a plain tar", media_type)
    return "tar"


def decompressed(f: BinaryIO, kind: str) -> Iterator[bytes]:
    """Decompressed pieces of `f`. Concatenated gzip members / zstd frames and trailing NUL padding
    are accepted; a stream that stops before its end marker raises EOFError."""
    if kind == "tar":
        yield from iter(lambda: f.read(READ_SIZE), b"")
        return
    yield from (_inflate(f) if kind == "gzip" else _unzstd(f))


def _inflate(f: BinaryIO) -> Iterator[bytes]:
    dec, started = zlib.decompressobj(31), False
    for data in iter(lambda: f.read(128 << 10), b""):
        while data:
            if dec.eof:
                data = data.lstrip(b"\0")
                if not data:
                    break
                dec = zlib.decompressobj(31)
            started = True
            while True:
                out = dec.decompress(data, _OUT_MAX)
                if out:
                    yield out
                data = dec.unused_data if dec.eof else dec.unconsumed_tail
                if data or dec.eof or len(out) < _OUT_MAX:
                    break  # else zlib holds more output for the same input
    if not started or not dec.eof:
        raise EOFError("truncated gzip stream")


def _unzstd(f: BinaryIO) -> Iterator[bytes]:
    decompressor = zstandard.ZstdDecompressor()
    dec, started = decompressor.decompressobj(), False
    for data in iter(lambda: f.read(16 << 10), b""):  # zstd's output per call is unbounded: small inputs
        while data:
            if dec.eof:
                data = data.lstrip(b"\0")
                if not data:
                    break
                dec = decompressor.decompressobj()
            started = True
            out = dec.decompress(data)
            if out:
                yield out
            data = dec.unused_data if dec.eof else b""
    if not started or not dec.eof:
        raise EOFError("truncated zstd stream")


class LayerStream:
    """File-like view of the decompressed blob (`read` only), filled ahead by a reader thread.

    Every decompressed byte goes through `hasher`; call `drain()` to hash the rest after the tar's
    end, and always `close()` (stops the thread) before closing `f`.
    """

    def __init__(self, f: BinaryIO, kind: str, hasher: hashlib._Hash | None = None) -> None:
        self._chunks, self._hasher = decompressed(f, kind), hasher
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._buf, self._pos, self._eof = b"", 0, False
        self.header_left: int | None = None  # bytes tarfile may still read for headers; None: data
        self._thread = threading.Thread(target=self._produce, name="layer-reader", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                pass
        return False

    def _produce(self) -> None:
        try:
            pending: list[bytes] = []
            size = 0
            for out in self._chunks:
                if self._hasher is not None:
                    self._hasher.update(out)
                pending.append(out)
                size += len(out)
                if size >= _CHUNK:
                    if not self._put(b"".join(pending)):
                        return
                    pending, size = [], 0
            if pending and not self._put(b"".join(pending)):
                return
            self._put(None)
        except BaseException as e:  # noqa: BLE001 - re-raised in the reading thread
            self._put(e)

    def read(self, n: int = -1) -> bytes:
        data = self._read(n)
        if self.header_left is not None:
            self.header_left -= len(data)
            if self.header_left < 0:
                raise HeaderTooLarge(f"an entry's tar headers (PAX records, a GNU long name or a sparse map) "
                                     f"are larger than {MAX_HEADER_BYTES >> 20} MiB")
        return data

    def _read(self, n: int) -> bytes:
        if self._pos >= len(self._buf):
            if self._eof:
                return b""
            item = self._q.get()
            if item is None or isinstance(item, BaseException):
                self._eof = True
                if item is None:
                    return b""
                raise item
            self._buf, self._pos = item, 0
        buf, pos = self._buf, self._pos
        if n < 0 or n >= len(buf) - pos:
            self._pos = len(buf)
            return buf if pos == 0 else buf[pos:]
        self._pos = pos + n
        return buf[pos : pos + n]

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


# tarfile's header errors (all HeaderError, a TarError), which typeshed does not declare.
_TruncatedHeaderError: type[tarfile.HeaderError] = tarfile.TruncatedHeaderError  # type: ignore[attr-defined]
_InvalidHeaderError: type[tarfile.HeaderError] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]
_SubsequentHeaderError: type[tarfile.HeaderError] = tarfile.SubsequentHeaderError  # type: ignore[attr-defined]


class _Info(tarfile.TarInfo):
    """A garbled or cut header is an error (tarfile would take it for the end of the archive)."""

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tf)
        except (_TruncatedHeaderError, _InvalidHeaderError) as e:
            raise _SubsequentHeaderError(f"bad or truncated header: {e}") from None


def members(stream: LayerStream) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """(member, tarfile) pairs; the consumer may read a regular member's data with `read_data`."""
    # A stream ("r|") only reads its file object: LayerStream needs no write, seek or tell.
    stream.header_left = _HEADER_READ_MAX  # opening parses the first entry's headers
    with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|", bufsize=_TAR_BUFSIZE, tarinfo=_Info,
                      encoding="utf-8", errors="surrogateescape") as tf:  # fmt: skip
        while (m := tf.next()) is not None:
            stream.header_left = None
            tf.members.clear()  # type: ignore[attr-defined]  # stream mode would keep every header otherwise
            yield m, tf
            if not _skip_to_next_header(tf, m):
                return
            stream.header_left = _HEADER_READ_MAX
        stream.header_left = None  # the padding after the end is drained as data


def read_data(tf: tarfile.TarFile, m: tarfile.TarInfo) -> Iterator[bytes]:
    """The content of regular member `m`, in pieces of at most READ_SIZE bytes."""
    if m.sparse is not None:
        src = tf.extractfile(m)
        assert src is not None
        yield from iter(lambda: src.read(READ_SIZE), b"")
        return
    stream, left = tf.fileobj, m.size  # read the tar stream directly: two wrapper layers fewer
    while left > 0:
        data = stream.read(min(left, READ_SIZE))
        if not data:
            raise tarfile.ReadError(f"unexpected end of data in {m.name!r}")
        left -= len(data)
        yield data


def _skip_to_next_header(tf: tarfile.TarFile, m: tarfile.TarInfo) -> bool:
    """Consume unread data and padding of `m`; False if the blob cleanly ends right after its data.

    Like Go's archive/tar (so containerd and umoci), a tar whose last member lacks its padding or
    the end-of-archive blocks is accepted: `umoci insert` writes such layers. Missing data is not.
    """
    stream = tf.fileobj
    want = tf.offset - stream.tell()
    while want > 0:
        got = len(stream.read(min(want, READ_SIZE)))
        want -= got
        if got == 0:
            if m.sparse is not None:
                data_end = tf.offset
            elif tf.offset > m.offset_data:  # members that carry data
                data_end = m.offset_data + m.size
            else:
                data_end = m.offset_data
            if tf.offset - want < data_end:
                raise tarfile.ReadError(f"unexpected end of data in {m.name!r}")
            return False
    return True

