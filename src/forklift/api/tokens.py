"""Pagination tokens.

`NextToken`s are opaque to clients: URL-safe base64 of a small JSON document holding a *keyset
position* (the sort key and name of the last item returned) plus a `kind` that binds the token to
the listing that made it (e.g. `"ListModels:CreationTime:Descending"`). Resuming "after this key"
rather than "at offset N" keeps pages correct while items are created or deleted in between.

CloudWatch Logs' GetLogEvents tokens are `f/<index>` and `b/<index>` (forward / backward), see
`encode_event_token`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from forklift.api.errors import ApiError
from forklift.api.jsondepth import nests_deeper

T = TypeVar("T")
Key = tuple[Any, ...]

_VERSION = 1


def _encode_part(value: Any) -> Any:
    if isinstance(value, datetime):  # naive stays naive, aware stays aware: keys compare again
        return {"t": value.isoformat()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"a token key part must be a str, number, bool, None or datetime, not {type(value).__name__}")


def _decode_part(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["t"])
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError("bad key part")


def encode_token(position: Key, kind: str = "") -> str:
    """An opaque token for the keyset `position` (e.g. `(creation_time, name)`)."""
    document = {"v": _VERSION, "k": kind, "p": [_encode_part(p) for p in position]}
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str, kind: str = "", *,
                 error: Callable[[str], ApiError] = ApiError.validation) -> Key:
    """The position inside a token made by `encode_token` with the same `kind`.

    Anything else (garbage, another listing's token, a tampered document) raises `error(...)`,
    a `ValidationException` by default.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if nests_deeper(raw):
            raise ValueError("not a token: nests too deep")
        document = json.loads(raw)
        if document["v"] != _VERSION or document["k"] != kind or not isinstance(document["p"], list):
            raise ValueError("not a token of this listing")
        return tuple(_decode_part(p) for p in document["p"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise error("Invalid pagination token: the NextToken was not produced by this listing.") from None


def keyset_page(items: Sequence[T], key: Callable[[T], Key], *, token: str | None, limit: int,
                descending: bool = False, kind: str = "",
                error: Callable[[str], ApiError] = ApiError.validation) -> tuple[list[T], str | None]:
    """One page of `items` ordered by `key`, resuming after the token's position.

    `key` must be unique per item (end it with the name). Returns the page and the token for the
    next one (None on the last page).
    """
    ordered = sorted(items, key=key, reverse=descending)
    if token:
        after = decode_token(token, kind, error=error)
        try:
            ordered = [item for item in ordered if (key(item) < after if descending else key(item) > after)]
        except TypeError:  # a key of another shape (e.g. a token from another sort order)
            raise error("Invalid pagination token: the NextToken was not produced by this listing.") from None
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (encode_token(key(page[-1]), kind) if more and page else None)


def encode_event_token(direction: str, index: int) -> str:
    """CloudWatch Logs style: `f/<index>` (read forward from index) or `b/<index>` (read before it)."""
    return f"{direction}/{index:056d}"


def decode_event_token(token: str) -> tuple[str, int]:
    direction, _, index = token.partition("/")
    if direction not in ("f", "b") or not index.isdigit() or len(index) > 56:
        raise ApiError.logs_invalid_parameter("The specified nextToken is invalid.")
    return direction, int(index)
