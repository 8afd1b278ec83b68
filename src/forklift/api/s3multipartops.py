"""S3's multipart uploads on the embedded store: Create, UploadPart, UploadPartCopy, Complete, Abort,
ListParts and ListMultipartUploads (`forklift.storage.s3multipart` keeps the parts)."""

from __future__ import annotations

import hashlib
import re

from anyio import to_thread

from forklift.api.s3errors import S3Error, decimal, xml_safe
from forklift.api.s3http import Reply, S3Request
from forklift.api.s3objectops import (
    MAX_OBJECT,
    bucket_dir,
    checksum_headers,
    copy_source,
    metadata_from,
    no_such_key,
    receive_into,
)
from forklift.api.s3xml import Node, child_text, parse, timestamp
from forklift.storage.s3multipart import MAX_PART_NUMBER, Upload
from forklift.storage.s3objects import ObjectMeta

MAX_PARTS_LISTED = 1000
_COPY_RANGE = re.compile(r"bytes=(\d{1,19})-(\d{1,19})", re.ASCII)


def _upload(request: S3Request) -> Upload:
    bucket_dir(request)
    return request.multipart.get(request.bucket, request.key, request.query.get("uploadId", ""))


def _part_number(request: S3Request) -> int:
    raw = request.query.get("partNumber", "")
    number = decimal(raw, 5)
    if number is None or not 1 <= number <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, "
                                         "inclusive", ArgumentName="partNumber", ArgumentValue=xml_safe(raw[:64]))
    return number


async def create_multipart_upload(request: S3Request) -> Reply:
    bucket_dir(request)
    stored, user = metadata_from(request.headers)
    await request.small_body(0)
    upload = await to_thread.run_sync(request.multipart.create, request.bucket, request.key, stored, user)
    return Reply.xml("InitiateMultipartUploadResult", [("Bucket", request.bucket), ("Key", request.key),
                                                       ("UploadId", upload.upload_id)])


async def upload_part(request: S3Request) -> Reply:
    upload = _upload(request)
    number = _part_number(request)
    multipart = request.multipart
    with multipart.writing_part(upload) as part:
        md5_hex, checksums = await receive_into(request, part.file, MAX_OBJECT)
        await to_thread.run_sync(multipart.commit_part, upload, number, part, md5_hex)
    return Reply(200, [("ETag", f'"{md5_hex}"'), *checksum_headers(checksums)])


async def upload_part_copy(request: S3Request) -> Reply:
    upload = _upload(request)
    number = _part_number(request)
    source_bucket, source_key = copy_source(request)
    source_dir = bucket_dir(request, source_bucket)
    await request.small_body(0)
    wanted = request.headers.get("x-amz-copy-source-range")

    def copy() -> str:
        opened = request.objects.open(source_dir, source_key)
        if opened is None:
            raise no_such_key(source_key)
        source, meta = opened
        with source:
            first, length = 0, meta.size
            if wanted:
                match = _COPY_RANGE.fullmatch(wanted.strip())
                if not match or int(match.group(2)) < int(match.group(1)) or int(match.group(2)) >= meta.size:
                    raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                                                     "bytes=first-last where first and last are the zero-based offsets "
                                                     "of the first and last bytes to copy",
                                  ArgumentName="x-amz-copy-source-range", ArgumentValue=wanted)
                first, length = int(match.group(1)), int(match.group(2)) - int(match.group(1)) + 1
            source.seek(first)
            digest = hashlib.md5(usedforsecurity=False)
            with request.multipart.writing_part(upload) as part:
                file = part.file
                left = length
                while left:
                    chunk = source.read(min(left, 1024 * 1024))
                    if not chunk:
                        break
                    digest.update(chunk)
                    file.write(chunk)
                    left -= len(chunk)
                request.multipart.commit_part(upload, number, part, digest.hexdigest())
            return digest.hexdigest()

    etag = await to_thread.run_sync(copy)
    return Reply.xml("CopyPartResult", [("ETag", f'"{etag}"')])


async def complete_multipart_upload(request: S3Request) -> Reply:
    upload = _upload(request)
    directory = bucket_dir(request)
    root = parse(await request.small_body())
    if root.tag != "CompleteMultipartUpload":
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                                      "published schema.")
    wanted: list[tuple[int, str]] = []
    for part in root.findall("Part"):
        number_text, etag = child_text(part, "PartNumber"), child_text(part, "ETag")
        number = decimal((number_text or "").strip(), 5)
        if number is None or etag is None:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                                          "our published schema (each Part needs a PartNumber of at most 5 digits "
                                          "and an ETag).")
        wanted.append((number, etag.strip()))
    if len(wanted) > MAX_PART_NUMBER:
        raise S3Error("MalformedXML", f"A multipart upload has at most {MAX_PART_NUMBER} parts.")
    meta: ObjectMeta = await to_thread.run_sync(request.multipart.complete, upload, directory, wanted)
    return Reply.xml("CompleteMultipartUploadResult", [
        ("Location", f"/{request.bucket}/{request.key}"), ("Bucket", request.bucket), ("Key", request.key),
        ("ETag", f'"{meta.etag}"')])


async def abort_multipart_upload(request: S3Request) -> Reply:
    upload = _upload(request)
    await to_thread.run_sync(request.multipart.abort, upload)
    return Reply(204)


async def list_parts(request: S3Request) -> Reply:
    upload = _upload(request)
    after = decimal(request.query.get("part-number-marker", "0")) or 0
    asked = decimal(request.query.get("max-parts", ""))
    max_parts = MAX_PARTS_LISTED if asked is None else min(asked, MAX_PARTS_LISTED)
    parts = [p for p in await to_thread.run_sync(request.multipart.parts, upload) if p.number > after]
    shown, truncated = parts[:max_parts], len(parts) > max_parts
    nodes: list[Node] = [("Bucket", request.bucket), ("Key", request.key), ("UploadId", upload.upload_id),
                         ("PartNumberMarker", after), ("MaxParts", max_parts), ("IsTruncated", truncated)]
    if truncated:
        nodes.append(("NextPartNumberMarker", shown[-1].number))
    nodes += [("StorageClass", "STANDARD")]
    nodes += [("Part", [("PartNumber", p.number), ("LastModified", timestamp(p.modified)),
                        ("ETag", f'"{p.etag}"'), ("Size", p.size)]) for p in shown]
    return Reply.xml("ListPartsResult", nodes)


async def list_multipart_uploads(request: S3Request) -> Reply:
    bucket_dir(request)
    prefix = request.query.get("prefix", "")
    uploads = await to_thread.run_sync(request.multipart.uploads, request.bucket, prefix)
    shown = uploads[:MAX_PARTS_LISTED]
    nodes: list[Node] = [("Bucket", request.bucket), ("Prefix", prefix), ("MaxUploads", MAX_PARTS_LISTED),
                         ("IsTruncated", len(uploads) > len(shown))]
    nodes += [("Upload", [("Key", u.key), ("UploadId", u.upload_id), ("StorageClass", "STANDARD"),
                          ("Initiated", timestamp(u.initiated))]) for u in shown]
    return Reply.xml("ListMultipartUploadsResult", nodes)

