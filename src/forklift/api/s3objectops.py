"""S3's object operations on the embedded store: PutObject, GetObject, HeadObject, DeleteObject, CopyObject.

A body streams from `PayloadReader` into a temporary file beside the object's; only an iteration that
ended without an error (every length, hash and checksum the head promised checked) is renamed into
place, so a request cut short or refused leaves the object as it was. GetObject streams the file it
opened, so an object replaced meanwhile is answered whole, old or new.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from anyio import to_thread

from forklift.api.s3errors import S3Error, decimal, xml_safe
from forklift.api.s3http import Reply, S3Request, http_date, parse_http_date
from forklift.api.s3xml import timestamp
from forklift.storage.s3objects import STORED_HEADERS, ObjectMeta, Pending, S3Objects

MAX_OBJECT = 5 * 1024**3  # a single PUT, and a part (S3's limits)
MAX_USER_METADATA = 2048  # bytes of x-amz-meta-* names and values together
CHUNK = 1024 * 1024
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})", re.ASCII)  # past 19 digits: ignored
_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
              "response-expires": "Expires", "response-cache-control": "Cache-Control",
              "response-content-disposition": "Content-Disposition",
              "response-content-encoding": "Content-Encoding"}


def bucket_dir(request: S3Request, bucket: str | None = None) -> Path:
    name = request.bucket if bucket is None else bucket
    found = request.objects.bucket_dir(name)
    if found is None:
        raise S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=xml_safe(name))
    return found


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=xml_safe(key))


def metadata_from(headers: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The stored headers and x-amz-meta-* a write request gives its object."""
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    user = {name[len("x-amz-meta-"):]: value for name, value in headers.items() if name.startswith("x-amz-meta-")}
    if sum(len(name) + len(value) for name, value in user.items()) > MAX_USER_METADATA:
        raise S3Error("MetadataTooLarge", f"Your metadata headers exceed the maximum allowed metadata size of "
                                          f"{MAX_USER_METADATA} bytes.")
    return stored, user


def object_headers(meta: ObjectMeta, checksums: bool) -> list[tuple[str, str]]:
    headers = [("ETag", f'"{meta.etag}"'), ("Last-Modified", http_date(meta.modified)),
               ("Content-Type", meta.content_type), ("Accept-Ranges", "bytes")]
    headers += [(name.title(), value) for name, value in meta.headers.items() if name != "content-type"]
    headers += [(f"x-amz-meta-{name}", value) for name, value in meta.user.items()]
    if meta.parts:
        headers.append(("x-amz-mp-parts-count", str(meta.parts)))
    if checksums:
        headers += checksum_headers(meta.checksums)
    return headers


def checksum_headers(checksums: dict[str, str]) -> list[tuple[str, str]]:
    """`x-amz-checksum-<algorithm>` headers of checksums keyed by algorithm or by that header's name."""
    return [(f"x-amz-checksum-{name.lower().removeprefix('x-amz-checksum-')}", value)
            for name, value in checksums.items()]


def declared_length(request: S3Request, limit: int) -> None:
    declared = decimal(request.headers.get("x-amz-decoded-content-length")
                       or request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.",
                      MaxSizeAllowed=str(limit))


async def receive_into(request: S3Request, file: BinaryIO, limit: int) -> tuple[str, dict[str, str]]:
    """The request body written to `file`: its MD5 (hex) and verified checksums, once all of it checked out."""
    declared_length(request, limit)
    reader = request.reader(limit)
    async for chunk in reader.read(request.receive):
        file.write(chunk)
    return reader.md5_hex, dict(reader.checksums)


async def put_object(request: S3Request) -> Reply:
    directory = bucket_dir(request)
    stored, user = metadata_from(request.headers)
    exclusive = request.headers.get("if-none-match", "").strip() == "*"
    objects = request.objects
    if exclusive and objects.head(directory, request.key) is not None:
        raise precondition_failed("If-None-Match")
    with objects.writing(directory, request.key) as pending:
        md5_hex, checksums = await receive_into(request, pending.file, MAX_OBJECT)
        meta = ObjectMeta(md5_hex, 0, datetime.now(tz=UTC), stored, user, checksums)
        meta = await to_thread.run_sync(_commit, objects, pending, meta, exclusive)
    return Reply(200, [("ETag", f'"{meta.etag}"'), *checksum_headers(meta.checksums)])


def _commit(objects: S3Objects, pending: Pending, meta: ObjectMeta, exclusive: bool) -> ObjectMeta:
    if not exclusive:
        return objects.commit(pending, meta)
    try:
        return objects.commit(pending, meta, exclusive=True)
    except FileExistsError:
        raise precondition_failed("If-None-Match") from None


def precondition_failed(condition: str) -> S3Error:
    return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                   Condition=condition)


def _check_conditions(request: S3Request, meta: ObjectMeta) -> int | None:
    """412 raised, or 304 returned, as the request's If-* headers ask."""
    headers = request.headers
    etag = f'"{meta.etag}"'
    if_match = headers.get("if-match")
    if if_match is not None and not _etag_matches(if_match, etag):
        raise precondition_failed("If-Match")
    since = parse_http_date(headers.get("if-unmodified-since", ""))
    if if_match is None and since is not None and meta.modified.replace(microsecond=0) > since:
        raise precondition_failed("If-Unmodified-Since")
    if_none = headers.get("if-none-match")
    if if_none is not None and _etag_matches(if_none, etag):
        return 304
    modified_since = parse_http_date(headers.get("if-modified-since", ""))
    if if_none is None and modified_since is not None and meta.modified.replace(microsecond=0) <= modified_since:
        return 304
    return None


def _etag_matches(header: str, etag: str) -> bool:
    wanted = [item.strip() for item in header.split(",")]
    return "*" in wanted or etag in wanted or etag.strip('"') in wanted


def _range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single `bytes=` range; None: the whole object (no range, or one S3 ignores)."""
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        length = int(last)
        if length == 0:
            raise _invalid_range(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        raise _invalid_range(size)
    return start, end


def _invalid_range(size: int) -> S3Error:
    return S3Error("InvalidRange", "The requested range is not satisfiable", 416, ActualObjectSize=str(size))


async def get_object(request: S3Request) -> Reply:
    directory = bucket_dir(request)
    opened = await to_thread.run_sync(request.objects.open, directory, request.key)
    if opened is None:
        raise no_such_key(request.key)
    file, meta = opened
    try:
        reply = _object_reply(request, meta)
        if reply.status != 200 or request.method == "HEAD":
            file.close()
            return reply
        first, last = 0, meta.size - 1
        wanted = request.headers.get("range")
        span = _range(wanted, meta.size) if wanted else None
        if span is not None:
            first, last = span
            reply.status = 206
            reply.headers.append(("Content-Range", f"bytes {first}-{last}/{meta.size}"))
            reply.headers = [(n, v) for n, v in reply.headers if not n.startswith("x-amz-checksum-")]
        reply.length = last - first + 1
        reply.body = _stream(file, first, reply.length)
        return reply
    except BaseException:
        file.close()
        raise


def _object_reply(request: S3Request, meta: ObjectMeta) -> Reply:
    status = _check_conditions(request, meta)
    checksums = request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and "range" not in request.headers
    headers = object_headers(meta, checksums)
    if status == 304:
        return Reply(304, [(n, v) for n, v in headers if n in ("ETag", "Last-Modified")])
    for parameter, header in _OVERRIDES.items():
        if parameter in request.query:
            headers = [(n, v) for n, v in headers if n.lower() != header.lower()] + [(header, request.query[parameter])]
    return Reply(200, headers, b"", meta.size)


async def _stream(file: BinaryIO, first: int, length: int) -> AsyncGenerator[bytes, None]:
    try:
        await to_thread.run_sync(file.seek, first)
        left = length
        while left > 0:
            chunk = await to_thread.run_sync(file.read, min(CHUNK, left))
            if not chunk:  # truncated in place under us: end short, and the client sees the length mismatch
                return
            left -= len(chunk)
            yield chunk
    finally:
        file.close()


async def head_object(request: S3Request) -> Reply:
    directory = bucket_dir(request)
    meta = await to_thread.run_sync(request.objects.head, directory, request.key)
    if meta is None:
        raise S3Error("NoSuchKey", "The specified key does not exist.", 404)
    reply = _object_reply(request, meta)
    reply.headers.append(("Content-Length", str(meta.size)))
    return reply


async def delete_object(request: S3Request) -> Reply:
    directory = bucket_dir(request)
    await to_thread.run_sync(request.objects.delete, directory, request.key)
    return Reply(204)


def copy_source(request: S3Request) -> tuple[str, str]:
    """(bucket, key) of x-amz-copy-source (`bucket/key`, URL-encoded, an optional leading `/`)."""
    raw = request.headers["x-amz-copy-source"]
    source = unquote(raw.partition("?")[0], errors="surrogateescape").lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                      ArgumentName="x-amz-copy-source", ArgumentValue=raw)
    return bucket, key


async def copy_object(request: S3Request) -> Reply:
    destination = bucket_dir(request)
    source_bucket, source_key = copy_source(request)
    source_dir = bucket_dir(request, source_bucket)
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive",
                      ArgumentValue=directive)
    if source_dir == destination and source_key == request.key and directive == "COPY":
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                                        "itself without changing the object's metadata, storage class, website "
                                        "redirect location or encryption attributes.")
    replaced = metadata_from(request.headers) if directive == "REPLACE" else None
    await request.small_body(0)  # a copy has no body
    meta = await to_thread.run_sync(_copy, request, source_dir, source_key, destination, replaced)
    return Reply.xml("CopyObjectResult", [("LastModified", timestamp(meta.modified)), ("ETag", f'"{meta.etag}"')])


def _copy(request: S3Request, source_dir: Path, source_key: str, destination: Path,
          replaced: tuple[dict[str, str], dict[str, str]] | None) -> ObjectMeta:
    objects = request.objects
    opened = objects.open(source_dir, source_key)
    if opened is None:
        raise no_such_key(source_key)
    source, meta = opened
    with source:
        status = _check_copy_conditions(request, meta)
        if status:
            raise precondition_failed("x-amz-copy-source-if")
        with objects.writing(destination, request.key) as pending:
            copied = ObjectMeta(meta.etag, meta.size, meta.modified, dict(meta.headers), dict(meta.user),
                                dict(meta.checksums), meta.parts)
            if replaced is not None:
                copied.headers, copied.user = replaced
            shutil.copyfileobj(source, pending.file, CHUNK)
            return objects.commit(pending, copied)


def _check_copy_conditions(request: S3Request, meta: ObjectMeta) -> bool:
    headers = request.headers
    etag = f'"{meta.etag}"'
    if_match = headers.get("x-amz-copy-source-if-match")
    if if_match is not None and not _etag_matches(if_match, etag):
        return True
    if_none = headers.get("x-amz-copy-source-if-none-match")
    return if_none is not None and _etag_matches(if_none, etag)
