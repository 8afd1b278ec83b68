"""The AWS query protocol, as botocore's `QuerySerializer` writes it and its `QueryParser` reads it:
a form-encoded request (`Action=…&Version=…&Member.Sub=…&List.member.1=…`) read into the members of
an operation's input shape, and answers and errors as XML.

The form is split on "." into a tree first (at most `MAX_DEPTH` parts a key), then read by the
shape, so a hostile form costs one pass; scalars are typed for `api.validation` (integers,
doubles and booleans from their text; timestamps and blobs stay text, which it parses).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from forklift.api.errors import ApiError

MAX_DEPTH = 32
FORM = "application/x-www-form-urlencoded"


def form_tree(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The form's keys as nested dicts (leaves are the values)."""
    tree: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:
            raise ApiError.serialization(f"The query parameter {key[:200]} nests deeper than {MAX_DEPTH} levels.")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ApiError.serialization(f"The query parameter {key[:200]} is given both as a value and as a "
                                             "structure.")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ApiError.serialization(f"The query parameter {key[:200]} is given both as a value and as a "
                                         "structure.")
        node[parts[-1]] = value
    return tree


def read_input(operation: OperationModel, tree: dict[str, Any]) -> dict[str, Any]:
    """The request's members, as JSON would carry them, from the form's tree."""
    shape = operation.input_shape
    if shape is None:
        return {}
    return _structure(shape, tree)


def _node(shape: Shape, node: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, node) if isinstance(node, dict) else node
    if kind == "list":
        if not isinstance(node, dict):
            return [] if node == "" else node  # `List=` is botocore's empty list
        items = node.get(shape.member.serialization.get("name", "member"), {})
        return _indexed(items, lambda item: _node(shape.member, item))
    if kind == "map":
        if not isinstance(node, dict):
            return node
        entries = _indexed(node.get("entry", {}), lambda entry: entry)
        out = {}
        for entry in entries:
            if isinstance(entry, dict) and "key" in entry:
                out[entry["key"]] = _node(shape.value, entry.get("value"))
        return out
    if isinstance(node, dict):
        return node  # the validator says it is a structure where a value belongs
    return _scalar(kind, node)


def _structure(shape: Shape, node: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, member in shape.members.items():
        wire = member.serialization.get("name", name)
        if wire in node:
            out[name] = _node(member, node[wire])
    return out


def _indexed(items: Any, read) -> list:
    if not isinstance(items, dict):
        raise ApiError.serialization("A query list must be given as List.member.N.")
    numbered = []
    for index, item in items.items():
        if not index.isdigit() or int(index) < 1:
            raise ApiError.serialization(f"A query list index must be a positive number, not {index[:50]!r}.")
        numbered.append((int(index), item))
    return [read(item) for _, item in sorted(numbered, key=lambda pair: pair[0])]


def _scalar(kind: str, text: str) -> Any:
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
    except ValueError:
        raise ApiError.serialization(f"The value {text[:100]!r} is not a number.") from None
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ApiError.serialization(f"The value {text[:100]!r} is not a boolean (true or false).")
        return text == "true"
    return text


# -- answers -----------------------------------------------------------------------------------
def xml_answer(operation: OperationModel, result: dict[str, Any] | None, request_id: str, namespace: str) -> bytes:
    name = operation.name
    shape = operation.output_shape
    body = _members(shape, result or {}) if shape is not None else ""
    return (f'<{name}Response xmlns="{namespace}"><{name}Result>{body}</{name}Result>'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{name}Response>").encode()


def xml_error(error: ApiError, request_id: str, namespace: str) -> bytes:
    kind = "Receiver" if error.status >= 500 else "Sender"
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>'
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>").encode()


def _members(shape: Shape, value: dict[str, Any]) -> str:
    parts = []
    for name, member in shape.members.items():
        if value.get(name) is not None:
            tag = member.serialization.get("name", name)
            parts.append(f"<{tag}>{_xml(member, value[name])}</{tag}>")
    return "".join(parts)


def _xml(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        return _members(shape, value)
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_xml(shape.member, item)}</{tag}>" for item in value)
    if kind == "map":
        return "".join(f"<entry><key>{escape(str(k))}</key><value>{_xml(shape.value, v)}</value></entry>"
                       for k, v in value.items())
    if kind == "timestamp":
        return iso8601(value)
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("double", "float"):
        return repr(float(value)) if math.isfinite(value) else ("NaN" if math.isnan(value) else
                                                               ("Infinity" if value > 0 else "-Infinity"))
    return escape(str(value))


def iso8601(value: float | datetime) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, tz=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
