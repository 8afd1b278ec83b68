"""S3's `aws-chunked` body framing, decoded incrementally: whatever byte boundaries the body arrives in,
it holds at most one chunk header line (`MAX_HEADER_LINE`) and the trailer (`MAX_TRAILER`), never the data.

    <hex size>[;chunk-signature=<sig>]\\r\\n <size bytes> \\r\\n   … repeated, then a chunk of size 0 …
    [<name>:<value>\\r\\n]… [x-amz-trailer-signature:<sig>\\r\\n] \\r\\n

Signed framings (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) chain each chunk's signature from the one
before it, the first from the head's (`ChunkSigner`); a chunk's bytes are handed on before its signature
is checked at its end, so the consumer keeps what it wrote only if the whole body decodes (`feed`, then
`finish`).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from forklift.api.s3errors import S3Error

__all__ = ["MAX_HEADER_LINE", "MAX_TRAILER", "ChunkSigner", "ChunkedDecoder"]

MAX_HEADER_LINE = 4096
MAX_TRAILER = 16 * 1024
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")

_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _malformed(why: str) -> S3Error:
    return S3Error("InvalidRequest", f"The aws-chunked body is malformed: {why}. Send it as the AWS SDKs frame it.")


def _incomplete() -> S3Error:
    return S3Error("IncompleteBody", "The request body ended before the final aws-chunked chunk: send the whole "
                                     "body.")


class ChunkSigner:
    """The chain of chunk (and trailer) signatures of a signed aws-chunked body, seeded by the head's."""

    def __init__(self, signing_key: bytes, stamp: str, credential_scope: str, seed_signature: str) -> None:
        self._key, self._stamp, self._scope, self._previous = signing_key, stamp, credential_scope, seed_signature

    def _check(self, kind: str, hashes: str, signature: str, what: str) -> None:
        to_sign = f"{kind}\n{self._stamp}\n{self._scope}\n{self._previous}\n{hashes}"
        expected = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise S3Error("SignatureDoesNotMatch", f"The {what} signature we calculated does not match the one you "
                                                   "provided: the body was altered, or signed with another key.", 403)
        self._previous = signature

    def check_chunk(self, signature: str, data_sha256: str) -> None:
        self._check("AWS4-HMAC-SHA256-PAYLOAD", f"{_EMPTY_SHA256}\n{data_sha256}", signature, "chunk")

    def check_trailer(self, signature: str, trailer: list[tuple[str, str]]) -> None:
        canonical = "".join(f"{name}:{value}\n" for name, value in trailer)
        self._check("AWS4-HMAC-SHA256-TRAILER", hashlib.sha256(canonical.encode()).hexdigest(), signature, "trailer")


class ChunkedDecoder:
    """An aws-chunked body's decoded bytes, fed its encoded bytes in any pieces. `signer` None: unsigned
    chunks. At most `max_bytes` decoded bytes (`EntityTooLarge` beyond); `trailers` once `finish` passes."""

    def __init__(self, signer: ChunkSigner | None, *, max_bytes: int, signed_trailer: bool = False) -> None:
        self.signer, self.max_bytes, self.signed_trailer = signer, max_bytes, signed_trailer
        self.trailers: dict[str, str] = {}
        self.decoded = 0
        self._state = _HEADER
        self._line = bytearray()
        self._trailer_size = 0
        self._trailer_lines: list[tuple[str, str]] = []
        self._remaining = 0  # of the current chunk's data, or of its closing CRLF
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256()

    def feed(self, data: bytes) -> list[bytes]:
        """The decoded bytes among `data`, or `S3Error` as soon as the framing or a signature is wrong."""
        out: list[bytes] = []
        view, at = memoryview(data), 0
        while at < len(view):
            if self._state == _DATA:
                take = min(self._remaining, len(view) - at)
                piece = bytes(view[at:at + take])
                at += take
                self._remaining -= take
                if self.signer is not None:
                    self._chunk_hash.update(piece)
                out.append(piece)
                if not self._remaining:
                    self._state, self._remaining = _DATA_END, 2
            elif self._state == _DATA_END:
                expected = b"\r\n"[2 - self._remaining:]
                take = min(self._remaining, len(view) - at)
                if bytes(view[at:at + take]) != expected[:take]:
                    raise _malformed("a chunk's data is not followed by CRLF where its size says it ends")
                at += take
                self._remaining -= take
                if not self._remaining:
                    self._end_chunk()
            elif self._state in (_HEADER, _TRAILER):
                at = self._read_line(view, at)
            else:
                raise _malformed("bytes follow the final chunk")
        return out

    def finish(self) -> None:
        """Once the body ended: `IncompleteBody` unless its final chunk (and trailer) arrived."""
        if self._state != _DONE:
            raise _incomplete()

    def _read_line(self, view: memoryview, at: int) -> int:
        limit = MAX_HEADER_LINE if self._state == _HEADER else MAX_TRAILER - self._trailer_size
        end = bytes(view[at:at + limit + 2 - len(self._line)]).find(b"\n")
        if end < 0:
            self._line += view[at:at + limit + 2 - len(self._line)]
            if len(self._line) > limit + 1:
                raise _malformed("a chunk header longer than 4 KiB" if self._state == _HEADER
                                 else "a trailer longer than 16 KiB")
            return len(view)
        self._line += view[at:at + end + 1]
        line = bytes(self._line)
        self._line.clear()
        if not line.endswith(b"\r\n"):
            raise _malformed("a line ends in a bare LF, not CRLF")
        if self._state == _HEADER:
            self._start_chunk(line[:-2])
        else:
            self._trailer_size += len(line)
            self._trailer_line(line[:-2])
        return at + end + 1

    def _start_chunk(self, header: bytes) -> None:
        size_text, _, extensions = header.partition(b";")
        if not _SIZE.fullmatch(size_text):
            raise _malformed("a chunk header does not start with its size in hex")
        size = int(size_text, 16)
        if self.decoded + size > self.max_bytes:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                          MaxSizeAllowed=str(self.max_bytes))
        signature = ""
        for extension in extensions.split(b";") if extensions else ():
            name, _, value = extension.partition(b"=")
            if name.strip() == b"chunk-signature":
                signature = value.strip().decode("latin-1")
        if self.signer is not None and not _SIGNATURE.fullmatch(signature):
            raise S3Error("SignatureDoesNotMatch", "A chunk of a signed aws-chunked body carries no valid "
                                                   "chunk-signature: sign every chunk, the final one too.", 403)
        self._chunk_signature = signature
        self.decoded += size
        if size:
            self._chunk_hash = hashlib.sha256()
            self._state, self._remaining = _DATA, size
        else:
            if self.signer is not None:
                self.signer.check_chunk(signature, _EMPTY_SHA256)
            self._state = _TRAILER

    def _end_chunk(self) -> None:
        if self.signer is not None:
            self.signer.check_chunk(self._chunk_signature, self._chunk_hash.hexdigest())
        self._state = _HEADER

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            if self.signer is not None and self.signed_trailer and "x-amz-trailer-signature" not in self.trailers:
                raise S3Error("SignatureDoesNotMatch", "The signed aws-chunked body's trailer carries no "
                                                       "x-amz-trailer-signature: sign the trailer.", 403)
            self._state = _DONE
            return
        if self.signer is not None and not self.signed_trailer:
            raise _malformed("a trailer follows the final chunk of a body signed without one")
        name, colon, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        if not colon or not name:
            raise _malformed("a trailer line is not 'name:value'")
        if "x-amz-trailer-signature" in self.trailers:
            raise _malformed("a trailer follows x-amz-trailer-signature")
        if name == "x-amz-trailer-signature" and self.signer is not None and self.signed_trailer:
            self.signer.check_trailer(value, self._trailer_lines)
        elif name in self.trailers:
            raise _malformed(f"the trailer {name} is sent twice")
        else:
            self._trailer_lines.append((name, value))
        self.trailers[name] = value
