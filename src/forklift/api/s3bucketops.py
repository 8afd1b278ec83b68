"""S3's service and bucket operations on the embedded store: ListBuckets, Create/Head/DeleteBucket,
GetBucketLocation, GetBucketVersioning, ListObjects (v1 and v2) and DeleteObjects.

A bucket here is what `forklift buckets mb` makes, a directory of `$FORKLIFT_HOME/buckets`; its
region is the server's. Listings walk the directory tree lazily (`forklift.storage.s3listing`): a
page reads what it returns, whatever the bucket holds.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

from anyio import to_thread

from forklift.api.authz import authorize_s3, s3_arn
from forklift.api.s3errors import S3Error, decimal, xml_safe
from forklift.api.s3http import XML, Reply, S3Request
from forklift.api.s3objectops import bucket_dir
from forklift.api.s3xml import NAMESPACE, Node, child_text, parse, timestamp
from forklift.storage.embedded import EmbeddedBuckets
from forklift.storage.errors import BucketAlreadyExists, InvalidBucketName, StorageError
from forklift.storage.s3listing import MAX_KEYS, Page, list_page
from forklift.storage.s3objects import BucketNotEmpty, read_meta

MAX_DELETE = 1000
STORAGE_CLASS = "STANDARD"


def owner(request: S3Request) -> list[Node]:
    principal = request.principal
    name = principal.name or principal.access_key_id if principal else "forklift"
    return [("ID", name), ("DisplayName", name)]


async def list_buckets(request: S3Request) -> Reply:
    buckets = await to_thread.run_sync(EmbeddedBuckets(request.objects.root).list_buckets)
    entries: list[Node] = [("Bucket", [("Name", b.name), ("CreationDate", timestamp(b.created))]) for b in buckets]
    return Reply.xml("ListAllMyBucketsResult", [("Owner", owner(request)), ("Buckets", entries)])


async def create_bucket(request: S3Request) -> Reply:
    body = await request.small_body()
    if body.strip():
        configuration = parse(body)
        constraint = child_text(configuration, "LocationConstraint")
        if constraint and constraint != request.region:
            raise S3Error("InvalidLocationConstraint", f"The specified location-constraint is not valid: this "
                                                       f"server's region is {request.region}.",
                          LocationConstraint=constraint)
    store = EmbeddedBuckets(request.objects.root)
    try:
        await to_thread.run_sync(store.make_bucket, request.bucket)
    except InvalidBucketName as exc:
        raise S3Error("InvalidBucketName", f"The specified bucket is not valid: {exc}",
                      BucketName=xml_safe(request.bucket)) from None
    except BucketAlreadyExists:
        raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and "
                                                 "you already own it.", 409, BucketName=request.bucket) from None
    return Reply(200, [("Location", f"/{request.bucket}")])


async def head_bucket(request: S3Request) -> Reply:
    bucket_dir(request)
    return Reply(200, [("x-amz-bucket-region", request.region)])


async def delete_bucket(request: S3Request) -> Reply:
    bucket_dir(request)
    try:
        await to_thread.run_sync(request.objects.delete_bucket, request.bucket)
    except BucketNotEmpty:
        raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409,
                      BucketName=request.bucket) from None
    for upload in await to_thread.run_sync(request.multipart.uploads, request.bucket):  # they end with it
        await to_thread.run_sync(request.multipart.abort, upload)
    return Reply(204)


async def get_bucket_location(request: S3Request) -> Reply:
    bucket_dir(request)
    region = "" if request.region == "us-east-1" else request.region  # S3 answers us-east-1 as empty
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint '
            f'xmlns="{NAMESPACE}">{escape(region)}</LocationConstraint>')
    return Reply(200, [("Content-Type", XML)], body.encode())


async def get_bucket_versioning(request: S3Request) -> Reply:
    bucket_dir(request)
    return Reply.xml("VersioningConfiguration", [])


def _max_keys(request: S3Request) -> int:
    raw = request.query.get("max-keys", str(MAX_KEYS))
    count = decimal(raw)
    if count is None:
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer range",
                      ArgumentName="max-keys", ArgumentValue=xml_safe(raw))
    return min(count, MAX_KEYS)


def _encoder(request: S3Request) -> Callable[[str], str]:
    encoding = request.query.get("encoding-type")
    if encoding is None:
        return lambda value: value
    if encoding != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type",
                      ArgumentValue=encoding)
    return lambda value: quote(value, safe="/~")


def _token(page: Page) -> str:
    marker = ("p" if page.last_is_prefix else "k") + page.last
    return base64.urlsafe_b64encode(marker.encode("utf-8", "surrogatepass")).decode()


def _from_token(token: str) -> tuple[str, bool]:
    try:
        marker = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        marker = ""
    if marker[:1] not in ("p", "k"):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName="continuation-token")
    return marker[1:], marker[0] == "p"


def _contents(page: Page, encode: Callable[[str], str]) -> list[Node]:
    nodes: list[Node] = []
    for entry in page.entries:
        meta = read_meta(entry.path, entry.st)
        nodes.append(("Contents", [("Key", encode(entry.key)), ("LastModified", meta.modified),
                                   ("ETag", f'"{meta.etag}"'), ("Size", meta.size),
                                   ("StorageClass", STORAGE_CLASS)]))
    return nodes


async def list_objects(request: S3Request) -> Reply:
    directory = bucket_dir(request)
    query = request.query
    v2 = query.get("list-type") == "2"
    encode = _encoder(request)
    max_keys = _max_keys(request)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    token = query.get("continuation-token") if v2 else None
    if token is not None:
        after, after_prefix = _from_token(token)
    else:
        after, after_prefix = query.get("start-after" if v2 else "marker", ""), False
    page = await to_thread.run_sync(lambda: list_page(directory, prefix, delimiter, after, max_keys, after_prefix))
    contents = await to_thread.run_sync(_contents, page, encode)
    common: list[Node] = [("CommonPrefixes", [("Prefix", encode(p))]) for p in page.prefixes]
    head: list[Node] = [("Name", request.bucket), ("Prefix", encode(prefix))]
    if delimiter:
        head.append(("Delimiter", encode(delimiter)))
    if v2:
        head += [("MaxKeys", max_keys), ("KeyCount", len(page.entries) + len(page.prefixes)),
                 ("IsTruncated", page.truncated)]
        if token is not None:
            head.append(("ContinuationToken", token))
        if page.truncated:
            head.append(("NextContinuationToken", _token(page)))
        if "start-after" in query:
            head.append(("StartAfter", encode(query["start-after"])))
    else:
        head += [("Marker", encode(query.get("marker", ""))), ("MaxKeys", max_keys), ("IsTruncated", page.truncated)]
        if page.truncated and delimiter:
            head.append(("NextMarker", encode(page.last)))
    if "encoding-type" in query:
        head.append(("EncodingType", "url"))
    return Reply.xml("ListBucketResult", head + contents + common)


async def delete_objects(request: S3Request) -> Reply:
    directory = bucket_dir(request)
    root = parse(await request.small_body())
    if root.tag != "Delete":
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                                      "published schema.")
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    keys = [child_text(item, "Key") for item in root.findall("Object")]
    if not keys or len(keys) > MAX_DELETE or any(key is None for key in keys):
        raise S3Error("MalformedXML", f"The XML you provided was not well-formed or did not validate against our "
                                      f"published schema (1 to {MAX_DELETE} Object elements, each with a Key).")
    results: list[Node] = []
    for key in keys:
        assert key is not None
        try:
            if request.principal is not None:
                # Each key is its own s3:DeleteObject, as in S3: a policy that denies some keys of the
                # bucket keeps them, whatever else the request names.
                authorize_s3(request.principal, request.account, "s3:DeleteObject", s3_arn(request.bucket, key))
        except S3Error as refused:
            results.append(("Error", [("Key", key), ("Code", refused.code), ("Message", refused.message)]))
            continue
        try:
            await to_thread.run_sync(request.objects.delete, directory, key)
        except StorageError as exc:
            results.append(("Error", [("Key", key), ("Code", "InvalidArgument"), ("Message", str(exc))]))
            continue
        if not quiet:
            results.append(("Deleted", [("Key", key)]))
    return Reply.xml("DeleteResult", results)
