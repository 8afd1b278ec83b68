"""How AWS's (Java) service framework renders validation messages, reproduced from observed responses.

- Member paths are lowerCamelCase (`roleARN`, `s3Uri`), joined by dots; list elements are
  `<list>.<1-based index>.member` (`inputDataConfig.1.member.channelName`).
- Values print the way Java's `toString` prints them: strings bare inside the quotes, lists as
  `[a, b]`, maps as `{k=v}`, doubles as `1.0`, blobs as `java.nio.HeapByteBuffer[…]`.
- Several violations come in the order AWS checks the members of a structure: the iteration order
  of a `java.util.HashMap` keyed by the lowerCamel member names (bucket = spread String.hashCode,
  default capacity 16 doubling past a 0.75 load factor, insertion order within a bucket). This
  reproduces the orders seen in published multi-error messages; a single error never depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def join_path(parent: str, member: str) -> str:
    return f"{parent}.{member}" if parent else member


def element_path(parent: str, index: int) -> str:
    return f"{parent}.{index + 1}.member"


def java_string_hash(text: str) -> int:
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h


def hashmap_order(keys: Iterable[str]) -> list[str]:
    """Keys in the order a java.util.HashMap filled with them (in this order) iterates."""
    keys = list(keys)
    capacity = 16
    while len(keys) > capacity * 0.75:
        capacity *= 2

    def bucket(key: str) -> int:
        h = java_string_hash(key)
        return (h ^ (h >> 16)) & (capacity - 1)

    return [key for _, key in sorted(enumerate(keys), key=lambda item: (bucket(item[1]), item[0]))]


def java_double(value: float) -> str:
    """`Double.toString`: `1.0`, `0.001`, `1.0E7`, `1.5E-4`, `NaN`, `Infinity`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(float(value))  # Python prints this range the same way, without an exponent
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    mantissa = text[0] + "." + (text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{len(text) + exponent - 1}"


def render_value(value: Any) -> str:
    """The text AWS puts between the quotes of `Value '…' at …`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, (bytes, bytearray)):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        items = ", ".join(f"{k}={render_value(value[k])}" for k in hashmap_order(value))
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)

