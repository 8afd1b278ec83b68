"""An S3 request as the S3 API's operations see it, and the answer they give back.

    async def get_object(request: S3Request) -> Reply: ...

A `Reply` body is bytes or an async iterator of bytes (an object streamed from its file); a HEAD
answer keeps its headers, Content-Length included, and sends no body.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from forklift.api.s3errors import S3Error
from forklift.api.s3payload import PayloadReader, SignedHead
from forklift.api.s3routing import S3Target
from forklift.api.s3xml import MAX_XML, document
from forklift.api.sigv4 import Principal
from forklift.storage.s3multipart import Multipart
from forklift.storage.s3objects import S3Objects

XML = "application/xml"


@dataclass
class S3Request:
    scope: dict
    receive: Callable[[], Any]
    target: S3Target
    head: SignedHead
    headers: dict[str, str]  # lower-cased names; a repeated header keeps its last value
    query: dict[str, str]
    objects: S3Objects
    multipart: Multipart
    region: str
    request_id: str
    account: str = ""  # the server's account id, for the ARNs of the principal a policy check names
    operation: str = ""  # set by the dispatcher, read by the audit record
    body_done: bool = False  # the body was read to its end (or the client went away)

    def __post_init__(self) -> None:
        inner = self.receive

        async def receive() -> Any:
            message = await inner()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                self.body_done = True
            return message
        self.receive = receive

    def has_body(self) -> bool:
        declared = self.headers.get("content-length", "0")
        return "transfer-encoding" in self.headers or (declared.isdigit() and int(declared) > 0)

    async def drain(self, limit: int) -> bool:
        """Read what is left of an unread body of at most `limit` bytes; False: too long, or cut short
        (then the connection must close, or its bytes would be read as the next request)."""
        if self.body_done or not self.has_body():
            return True
        declared = self.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > limit:
            return False
        read = 0
        while not self.body_done:
            message = await self.receive()
            read += len(message.get("body", b""))
            if message["type"] == "http.disconnect" or read > limit:
                return False
        return True

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def principal(self) -> Principal | None:
        return self.head.principal

    @property
    def bucket(self) -> str:
        return self.target.bucket

    @property
    def key(self) -> str:
        return self.target.key

    def reader(self, max_bytes: int) -> PayloadReader:
        return PayloadReader(self.head, self.headers, max_bytes=max_bytes)

    async def small_body(self, max_bytes: int = MAX_XML) -> bytes:
        """A request body that is a document (XML), read whole: at most `max_bytes`."""
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
        reader = self.reader(max_bytes)
        return b"".join([chunk async for chunk in reader.read(self.receive)])


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncGenerator[bytes, None] = b""
    length: int | None = None  # Content-Length of a streamed body

    @classmethod
    def xml(cls, root: str, children: Any, status: int = 200) -> Reply:
        return cls(status, [("Content-Type", XML)], document(root, children))


def parse_query(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="surrogateescape"))


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


async def send_reply(reply: Reply, request_id: str, head_only: bool, send: Callable[[dict], Any],
                     receive: Callable[[], Any]) -> None:
    headers = [(b"x-amz-request-id", request_id.encode()), (b"x-amzn-requestid", request_id.encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1", "replace")) for name, value in reply.headers]
    body = reply.body
    if isinstance(body, bytes):
        length = len(body)
    else:
        length = reply.length if reply.length is not None else 0
    if not any(name == b"content-length" for name, _ in headers) and reply.status not in (204, 304):
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if isinstance(body, bytes):
        await send({"type": "http.response.body", "body": b"" if head_only else body})
        return
    if head_only:
        await body.aclose()
        await send({"type": "http.response.body", "body": b""})
        return
    await _stream(body, send, receive)


async def _stream(body: AsyncGenerator[bytes, None], send: Callable[[dict], Any], receive: Callable[[], Any]) -> None:
    """Send `body`, stopping (and closing its file) as soon as the client goes away: a dropped download
    of gigabytes reads no further."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    try:
        async for chunk in body:
            if gone.is_set():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        watcher.cancel()
        await body.aclose()
