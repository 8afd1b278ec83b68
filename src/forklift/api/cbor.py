"""CBOR for Smithy's rpc-v2-cbor protocol (CloudWatch, as botocore speaks it): a bounded decoder of
the subset a request may hold, and the encoder of answers (cbor2).

A request body is a caller's bytes, so the decoder takes only what botocore sends: integers, byte
and text strings (definite or indefinite length), arrays, maps with text keys, `true`, `false`,
`null`, `undefined`, floats, and tag 1 (epoch seconds, a timestamp), decoded to a float. Any other
tag (cbor2 would build bignums, decimals, regexes or shared references from them), a nesting deeper
than `MAX_DEPTH`, a length longer than what is left of the body, a truncated item or bytes after the
item are refused with a `CborError` naming what is wrong; a body is bounded in size by its reader.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
from typing import Any

import cbor2

from forklift.errors import ForkliftError

MAX_DEPTH = 64
_BREAK = object()


class CborError(ForkliftError, ValueError):
    """The body is not CBOR this decoder accepts."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if count > len(self.data) - self.at:
            raise CborError("the CBOR body ends inside an item")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk

    def argument(self, info: int) -> int:
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            size = 1 << (info - 24)
            return int.from_bytes(self.take(size), "big")
        raise CborError(f"CBOR additional information {info} is reserved or not allowed here")

    def left(self) -> int:
        return len(self.data) - self.at


def decode(data: bytes) -> Any:
    """The one CBOR item `data` holds (an empty body is `{}`)."""
    if not data:
        return {}
    reader = _Reader(data)
    value = _item(reader, 0)
    if value is _BREAK:
        raise CborError("a CBOR break outside an indefinite-length item")
    if reader.left():
        raise CborError(f"{reader.left()} bytes follow the CBOR item")
    return value


def _item(reader: _Reader, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CborError(f"the CBOR body nests deeper than {MAX_DEPTH} levels")
    initial = reader.take(1)[0]
    major, info = initial >> 5, initial & 0x1F
    if major == 7:
        return _simple(reader, info)
    if info == 31:
        return _indefinite(reader, major, depth)
    argument = reader.argument(info)
    if major == 0:
        return argument
    if major == 1:
        return -1 - argument
    if major == 2:
        return reader.take(argument)
    if major == 3:
        return _text(reader.take(argument))
    if major == 4:
        if argument > reader.left():  # each item takes at least a byte: a longer count is a lie
            raise CborError("a CBOR array claims more items than the body holds")
        return [_value(reader, depth + 1) for _ in range(argument)]
    if major == 5:
        if argument * 2 > reader.left():
            raise CborError("a CBOR map claims more entries than the body holds")
        out: dict[str, Any] = {}
        for _ in range(argument):
            key = _key(reader, depth + 1)
            out[key] = _value(reader, depth + 1)
        return out
    # major 6: a tag
    if argument != 1:
        raise CborError(f"CBOR tag {argument} is not accepted (only tag 1, a timestamp)")
    value = _value(reader, depth + 1)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CborError("a CBOR timestamp (tag 1) must hold a finite number of seconds")
    return float(value)


def _value(reader: _Reader, depth: int) -> Any:
    value = _item(reader, depth)
    if value is _BREAK:
        raise CborError("a CBOR break outside an indefinite-length item")
    return value


def _key(reader: _Reader, depth: int) -> str:
    key = _value(reader, depth)
    if not isinstance(key, str):
        raise CborError("a CBOR map key must be a text string")
    return key


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CborError("a CBOR text string is not valid UTF-8") from None


def _indefinite(reader: _Reader, major: int, depth: int) -> Any:
    if major in (2, 3):
        parts = []
        while True:
            chunk = _item(reader, depth + 1)
            if chunk is _BREAK:
                break
            if not isinstance(chunk, bytes if major == 2 else str):
                raise CborError("an indefinite-length CBOR string holds a chunk of another type")
            parts.append(chunk)
        return b"".join(parts) if major == 2 else "".join(parts)
    if major == 4:
        items = []
        while (item := _item(reader, depth + 1)) is not _BREAK:
            items.append(item)
        return items
    if major == 5:
        out: dict[str, Any] = {}
        while (key := _item(reader, depth + 1)) is not _BREAK:
            if not isinstance(key, str):
                raise CborError("a CBOR map key must be a text string")
            out[key] = _value(reader, depth + 1)
        return out
    raise CborError(f"CBOR major type {major} has no indefinite length")


def _simple(reader: _Reader, info: int) -> Any:
    if info == 20:
        return False
    if info == 21:
        return True
    if info in (22, 23):
        return None
    if info == 25:
        return struct.unpack(">e", reader.take(2))[0]
    if info == 26:
        return struct.unpack(">f", reader.take(4))[0]
    if info == 27:
        return struct.unpack(">d", reader.take(8))[0]
    if info == 31:
        return _BREAK
    raise CborError(f"CBOR simple value {info} is not accepted")


def encode(value: Any) -> bytes:
    """`value` as CBOR; a datetime as tag 1 (epoch seconds), as botocore reads timestamps."""
    return cbor2.dumps(_tagged(value))


def _tagged(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_tagged(v) for v in value]
    if isinstance(value, datetime):
        return cbor2.CBORTag(1, value.timestamp())
    return value
