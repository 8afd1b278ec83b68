"""S3's errors: what the S3 API's handlers, its signature check and its payload decoder raise, and the
XML body S3 answers them with (botocore reads `Code` and `Message` from it, and raises
`client.exceptions.NoSuchKey` and friends from the code).

    raise S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)
"""

from __future__ import annotations

import re
from urllib.parse import quote
from xml.sax.saxutils import escape

from forklift.errors import ForkliftError

_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(value: str) -> str:
    """`value` with what XML 1.0 cannot carry at all (control characters but tab and newlines, lone
    surrogates) percent-encoded: for names echoed back in an error."""
    return _UNSAFE.sub(lambda match: quote(match.group(), errors="surrogateescape"), value)


class S3Error(ForkliftError):
    """An S3-shaped error: `code` is S3's error code, `status` the HTTP status it comes with, `fields`
    the extra elements S3 adds (`BucketName`, `Key`, …), written in the order given."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields

    def __repr__(self) -> str:
        return f"S3Error({self.code!r}, {self.message!r}, status={self.status})"

    def to_xml(self, request_id: str, resource: str | None = None) -> bytes:
        """The `<Error>` document, as S3 sends it."""
        parts = [f"<Code>{escape(self.code)}</Code>", f"<Message>{escape(self.message)}</Message>"]
        # A field echoes what the request sent (an upload id, an argument): it may hold what XML cannot.
        parts += [f"<{name}>{escape(xml_safe(str(value)))}</{name}>" for name, value in self.fields.items()]
        if resource is not None:
            parts.append(f"<Resource>{escape(resource)}</Resource>")
        parts.append(f"<RequestId>{escape(request_id)}</RequestId>")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()


def decimal(raw: str, digits: int = 19) -> int | None:
    """`raw` as a count when it is ASCII digits only, at most `digits` of them (a 64-bit size), else None.

    `str.isdigit` also takes `²`, which `int` refuses, and `int` refuses more than 4300 digits: a
    number from a header, a query or an XML body checked that way alone was a 500.
    """
    if not raw or len(raw) > digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
