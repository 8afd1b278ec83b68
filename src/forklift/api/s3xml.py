"""S3's XML: documents rendered from nested tuples, and request bodies parsed with bounds.

A body is at most `MAX_XML` bytes (read through `PayloadReader` with that cap) and may not declare a
DTD: `<!DOCTYPE` (and with it every entity) is refused as MalformedXML before the parser sees it.
Element names are compared without their namespace, as S3 does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from xml.sax.saxutils import escape

from forklift.api.s3errors import S3Error

MAX_XML = 1024 * 1024
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
Node = tuple[str, "Value"] | None
Value = str | int | bool | datetime | Iterable[Node] | None


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text(value: str | int | bool | datetime) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return timestamp(value)
    return escape(str(value))


def _render(name: str, value: Value, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, (str, int, bool, datetime)):
        out.append(f"<{name}>{_text(value)}</{name}>")
        return
    out.append(f"<{name}>")
    for child in value:
        if child is not None:
            _render(child[0], child[1], out)
    out.append(f"</{name}>")


def document(root: str, children: Iterable[Node]) -> bytes:
    """`<root xmlns=S3>children…</root>`; a child whose value is None is left out."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<{root} xmlns="{NAMESPACE}">']
    for child in children:
        if child is not None:
            _render(child[0], child[1], out)
    out.append(f"</{root}>")
    return "".join(out).encode()


def malformed() -> S3Error:
    return S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                                   "published schema.")


def parse(body: bytes) -> ET.Element:
    """The root element of a request body; MalformedXML for anything but plain, small, DTD-free XML."""
    if len(body) > MAX_XML or b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise malformed()
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise malformed() from None
    for element in root.iter():
        element.tag = local(element.tag)
    return root


def local(tag: str) -> str:
    return tag.rpartition("}")[2] if tag.startswith("{") else tag


def child_text(element: ET.Element, name: str) -> str | None:
    found = element.find(name)
    return None if found is None else (found.text or "")
