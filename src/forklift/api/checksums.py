"""The checksums an S3 client may send with a body (`x-amz-checksum-<algorithm>`, base64 of the
big-endian digest), computed as the body streams.

CRC32 comes from zlib and SHA-1/SHA-256 from hashlib. CRC32C and CRC64NVME come from `awscrt` where it is
installed (botocore uses it too); without it they are computed in Python, byte by byte, which runs at
about 4 MB/s, so a body that would take more than a couple of seconds of the server's event loop
(`PURE_PYTHON_LIMIT`) is refused with the advice to pick another algorithm.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from forklift.api.s3errors import S3Error

__all__ = ["ALGORITHMS", "PURE_PYTHON_LIMIT", "Checksum", "decode_base64_digest", "digest_size", "new_checksum"]

ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
_DIGEST_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
PURE_PYTHON_LIMIT = 8 * 1024 * 1024

try:
    from awscrt import checksums as _crt  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # an optional speed-up; the Python tables below stand in
    _crt = None


class Checksum(Protocol):
    def update(self, data: bytes) -> None: ...
    def digest(self) -> bytes: ...


class _Crc:
    """A CRC kept as an int, advanced by `step(data, crc)` (zlib's and awscrt's calling convention)."""

    def __init__(self, step: Callable[[bytes, int], int], size: int) -> None:
        self._step, self._size, self._crc = step, size, 0

    def update(self, data: bytes) -> None:
        self._crc = self._step(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(self._size, "big")


class _BoundedCrc(_Crc):
    """A pure-Python CRC that refuses to run past `PURE_PYTHON_LIMIT` bytes (a body of unknown length)."""

    def __init__(self, step: Callable[[bytes, int], int], size: int, algorithm: str) -> None:
        super().__init__(step, size)
        self._algorithm, self._seen = algorithm, 0

    def update(self, data: bytes) -> None:
        self._seen += len(data)
        if self._seen > PURE_PYTHON_LIMIT:
            raise _too_slow(self._algorithm)
        super().update(data)


def _too_slow(algorithm: str) -> S3Error:
    return S3Error("InvalidRequest", f"This server computes {algorithm.upper()} without awscrt, only for bodies of "
                                     f"at most {PURE_PYTHON_LIMIT} bytes: use CRC32, SHA1 or SHA256 for this body, or "
                                     "install awscrt on the server.")


@cache
def _table(poly: int) -> tuple[int, ...]:
    """The byte table of a reflected CRC with this (reversed) polynomial."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def _python_crc(poly: int, bits: int) -> Callable[[bytes, int], int]:
    mask = (1 << bits) - 1

    def step(data: bytes, crc: int) -> int:
        table, crc = _table(poly), crc ^ mask  # init and final xor are all ones, as zlib's crc32 has them
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ mask

    return step


_crc32c_python = _python_crc(0x82F63B78, 32)
_crc64nvme_python = _python_crc(0x9A6C9329AC4BC9B5, 64)


def new_checksum(algorithm: str, size_hint: int | None = None) -> Checksum:
    """A running checksum of `algorithm` (one of `ALGORITHMS`), or `S3Error` where this server cannot compute
    it for a body of `size_hint` bytes."""
    if algorithm == "crc32":
        return _Crc(zlib.crc32, 4)
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm)
    if algorithm in ("crc32c", "crc64nvme"):
        if _crt is not None:
            step: Any = _crt.crc32c if algorithm == "crc32c" else _crt.crc64nvme
            return _Crc(step, _DIGEST_SIZES[algorithm])
        if size_hint is not None and size_hint > PURE_PYTHON_LIMIT:
            raise _too_slow(algorithm)
        return _BoundedCrc(_crc32c_python if algorithm == "crc32c" else _crc64nvme_python, _DIGEST_SIZES[algorithm],
                           algorithm)
    raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm!r} is not one S3 knows: use one of "
                                    f"{', '.join(a.upper() for a in ALGORITHMS)}.")


def decode_base64_digest(name: str, value: str, size: int) -> bytes:
    """The digest a base64 header (or trailer) `name` carries, or `InvalidDigest`/`InvalidRequest` if it is not
    one of `size` bytes."""
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != size:
        if name == "content-md5":
            raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid: send the base64 of the body's "
                                           "16-byte MD5.")
        raise S3Error("InvalidRequest", f"Value for {name} header is invalid: send the base64 of the body's "
                                        f"{size}-byte checksum.")
    return digest


def digest_size(algorithm: str) -> int:
    return _DIGEST_SIZES[algorithm]
