"""The S3 API of `forklift serve`: the embedded bucket store, on the server's own port.

    app = S3Api(services)           # ForkliftApp hands it what `api.s3routing.is_s3` says is S3's
    await app(scope, receive, send)

One request: the bucket and key from the path or the Host (`api.s3routing`), the operation from the
method and sub-resource, the signature of the head (`api.s3payload.authenticate_s3`), the signer's
policy (`api.authz.authorize_s3`), then the operation (`s3bucketops`, `s3objectops`, `s3multipartops`).
Every failure is S3's XML error; anything unexpected a 500 `InternalError` whose details stay in the
log under the request id. Mutating calls go to the audit log (without bodies), like SageMaker's.

S3 calls do not pass the control plane's admission gate (`api.admission`): an upload may take
minutes and must not hold a place SageMaker calls wait for; the connection limits of `api.edge` bound them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from forklift.api.authz import authorize_s3, s3_arn
from forklift.api.context import ANONYMOUS, new_request_id
from forklift.api.s3bucketops import (
    create_bucket,
    delete_bucket,
    delete_objects,
    get_bucket_location,
    get_bucket_versioning,
    head_bucket,
    list_buckets,
    list_objects,
)
from forklift.api.s3errors import S3Error
from forklift.api.s3http import Reply, S3Request, parse_query, send_reply
from forklift.api.s3multipartops import (
    abort_multipart_upload,
    complete_multipart_upload,
    create_multipart_upload,
    list_multipart_uploads,
    list_parts,
    upload_part,
    upload_part_copy,
)
from forklift.api.s3objectops import copy_object, copy_source, delete_object, get_object, head_object, put_object
from forklift.api.s3payload import SignedHead, authenticate_s3
from forklift.api.s3routing import target
from forklift.audit import OK, AuditLog
from forklift.storage.errors import StorageError, UnsafeKey
from forklift.storage.s3multipart import EntityTooSmall, InvalidPart, InvalidPartOrder, Multipart, NoSuchUpload
from forklift.storage.s3objects import MAX_KEY_BYTES, S3Objects, UnstorableKey

log = logging.getLogger(__name__)
Operation = Callable[[S3Request], Awaitable[Reply]]

# Query parameters that select no sub-resource: any other one names a feature this store lacks.
_PLAIN = {"prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after", "encoding-type",
          "fetch-owner", "list-type", "uploadId", "partNumber", "part-number-marker", "max-parts", "uploads",
          "delete", "location", "versioning", "x-id", "key-marker", "upload-id-marker", "max-uploads",
          "versionId"} | {f"response-{h}" for h in ("content-type", "content-language", "expires", "cache-control",
                                                     "content-disposition", "content-encoding")}
DRAIN_LIMIT = 1024 * 1024  # an unread body up to this is read and dropped; past it the connection closes
_NOT_AUDITED = {"UploadPart", "UploadPartCopy"}  # their Complete is the change; a part is no object yet
_READS = {"ListBuckets", "HeadBucket", "GetBucketLocation", "GetBucketVersioning", "ListObjects", "ListObjectsV2",
          "ListMultipartUploads", "GetObject", "HeadObject", "ListParts"}
# operation -> (IAM action, whether its resource is the object rather than the bucket)
ACTIONS = {
    "ListBuckets": ("s3:ListAllMyBuckets", None), "CreateBucket": ("s3:CreateBucket", False),
    "HeadBucket": ("s3:ListBucket", False), "DeleteBucket": ("s3:DeleteBucket", False),
    "GetBucketLocation": ("s3:GetBucketLocation", False), "GetBucketVersioning": ("s3:GetBucketVersioning", False),
    "ListObjects": ("s3:ListBucket", False), "ListObjectsV2": ("s3:ListBucket", False),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", False), "DeleteObjects": ("s3:DeleteObject", None),
    "PutObject": ("s3:PutObject", True), "CopyObject": ("s3:PutObject", True), "GetObject": ("s3:GetObject", True),
    "HeadObject": ("s3:GetObject", True), "DeleteObject": ("s3:DeleteObject", True),
    "CreateMultipartUpload": ("s3:PutObject", True), "UploadPart": ("s3:PutObject", True),
    "UploadPartCopy": ("s3:PutObject", True), "CompleteMultipartUpload": ("s3:PutObject", True),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", True), "ListParts": ("s3:ListMultipartUploadParts", True),
}
OPERATIONS: dict[str, Operation] = {
    "ListBuckets": list_buckets, "CreateBucket": create_bucket, "HeadBucket": head_bucket,
    "DeleteBucket": delete_bucket, "GetBucketLocation": get_bucket_location,
    "GetBucketVersioning": get_bucket_versioning, "ListObjects": list_objects, "ListObjectsV2": list_objects,
    "ListMultipartUploads": list_multipart_uploads, "DeleteObjects": delete_objects, "PutObject": put_object,
    "CopyObject": copy_object, "GetObject": get_object, "HeadObject": head_object, "DeleteObject": delete_object,
    "CreateMultipartUpload": create_multipart_upload, "UploadPart": upload_part, "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_multipart_upload, "AbortMultipartUpload": abort_multipart_upload,
    "ListParts": list_parts,
}


def operation_of(method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]) -> str:
    """S3's name for the operation a request is, or S3Error (NotImplemented, MethodNotAllowed)."""
    unknown = sorted(set(query) - _PLAIN - {name for name in query if name.startswith("X-Amz-")}
                     - {"AWSAccessKeyId", "Signature", "Expires"})
    if unknown:
        raise S3Error("NotImplemented", f"The embedded bucket store does not implement the ?{unknown[0]} "
                                        "sub-resource.", 501)
    if not bucket:
        if method == "GET":
            return "ListBuckets"
    elif not key:
        found = _bucket_operation(method, query)
        if found:
            return found
    else:
        found = _object_operation(method, query, headers)
        if found:
            return found
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405,
                  Method=method, ResourceType="OBJECT" if key else "BUCKET" if bucket else "SERVICE")


def _bucket_operation(method: str, query: dict[str, str]) -> str | None:
    if method == "GET":
        for name, operation in (("location", "GetBucketLocation"), ("versioning", "GetBucketVersioning"),
                                ("uploads", "ListMultipartUploads")):
            if name in query:
                return operation
        return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if "versioning" in query or "location" in query or "uploads" in query or "delete" in query:
        return None
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method)


def _object_operation(method: str, query: dict[str, str], headers: dict[str, str]) -> str | None:
    upload = "uploadId" in query
    copy = "x-amz-copy-source" in headers
    if method == "PUT":
        if upload or "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload" if upload else None
    if method == "GET":
        return "ListParts" if upload else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if upload else "DeleteObject"
    return None


def _storage_error(error: StorageError, request: S3Request) -> S3Error:
    key = request.key
    if isinstance(error, NoSuchUpload):
        return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                                       "upload may have been aborted or completed.", 404, UploadId=str(error))
    for kind, code in ((InvalidPart, "InvalidPart"), (InvalidPartOrder, "InvalidPartOrder"),
                       (EntityTooSmall, "EntityTooSmall")):
        if isinstance(error, kind):
            return S3Error(code, str(error))
    if isinstance(error, (UnstorableKey, UnsafeKey)):
        # percent-encoded: a key may hold characters XML 1.0 cannot carry (NUL, other controls)
        return S3Error("InvalidArgument", f"{error}.", ArgumentName="key", ArgumentValue=quote(key[:1024], safe="/"))
    return S3Error("InternalError", "We encountered an internal error. Please try again.", 500)


class S3Api:
    """The ASGI app of S3 requests: `root` is the embedded store's buckets directory."""

    def __init__(self, root: Path, virtual_hosts: tuple[str, ...], region: str, account: str,
                 authenticate: Any = None, audit: AuditLog | None = None) -> None:
        self.objects = S3Objects(root)
        self.multipart = Multipart(self.objects)
        self.virtual_hosts = virtual_hosts
        self.region, self.account = region, account
        self.authenticate, self.audit = authenticate, audit

    async def __call__(self, scope: dict, receive: Callable[[], Any], send: Callable[[dict], Any]) -> None:
        request_id = new_request_id()
        resource = (scope.get("raw_path") or b"/").decode("latin-1")  # still percent-encoded, so always XML-safe
        outcome = OK
        request = self._request(scope, receive, request_id)
        try:
            reply = await self._handle(request)
        except (S3Error, StorageError) as caught:
            error = caught if isinstance(caught, S3Error) else _storage_error(caught, request)
            outcome = error.code
            reply = self._error(error, request_id, resource)
        except Exception:
            log.exception("S3 request %s failed", request_id)
            outcome = "InternalError"
            reply = self._error(S3Error("InternalError", "We encountered an internal error. Please try again.", 500),
                                request_id, resource)
        if request.operation and request.operation not in _READS | _NOT_AUDITED:
            self._record(request, outcome)
        if not await request.drain(DRAIN_LIMIT):
            reply.headers.append(("Connection", "close"))
        await send_reply(reply, request_id, scope["method"] == "HEAD", send, request.receive)

    def _error(self, error: S3Error, request_id: str, resource: str) -> Reply:
        if error.status >= 500:
            log.warning("S3 request %s: %s %s", request_id, error.code, error.message)
        return Reply(error.status, [("Content-Type", "application/xml")], error.to_xml(request_id, resource))

    def _request(self, scope: dict, receive: Callable[[], Any], request_id: str) -> S3Request:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        return S3Request(scope, receive, target(scope, self.virtual_hosts), SignedHead(None), headers,
                         parse_query(scope.get("query_string") or b""), self.objects, self.multipart, self.region,
                         request_id, self.account)

    def _authenticate(self, request: S3Request) -> None:
        request.head = authenticate_s3(self.authenticate, request.scope)
        if request.head.principal is None and self.authenticate is not None \
                and getattr(self.authenticate, "keyed", bool)():
            # Access keys exist, so the request must carry a signature that checked out.
            raise S3Error("AccessDenied", "Access Denied: this server has access keys, so requests must be signed "
                                          "with one (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).", 403)
        try:
            encoded = request.key.encode("utf-8")
        except UnicodeEncodeError:
            raise S3Error("InvalidArgument", "Object keys must be valid UTF-8.", ArgumentName="key") from None
        if len(encoded) > MAX_KEY_BYTES:
            raise S3Error("KeyTooLongError", "Your key is too long", KeyLength=str(len(encoded)))

    async def _handle(self, request: S3Request) -> Reply:
        operation = operation_of(request.method, request.bucket, request.key, request.query, request.headers)
        request.operation = operation  # before the signature check: a refused write is audited too
        self._authenticate(request)
        action, on_object = ACTIONS[operation]
        principal = request.principal
        if principal is not None and principal.policy is not None:
            if operation != "DeleteObjects":  # authorized key by key, as it deletes them
                resource = "*" if on_object is None else s3_arn(request.bucket, request.key if on_object else None)
                authorize_s3(principal, self.account, action, resource)
            if operation in ("CopyObject", "UploadPartCopy"):
                source_bucket, source_key = copy_source(request)
                authorize_s3(principal, self.account, "s3:GetObject", s3_arn(source_bucket, source_key))
        return await OPERATIONS[operation](request)

    def _record(self, request: S3Request, outcome: str) -> None:
        if self.audit is None:
            return
        principal = request.principal
        record: dict[str, Any] = {
            "event": "api",
            "principal": principal.arn(self.account) if principal else ANONYMOUS,
            "operation": f"s3:{request.operation}",
            "resource": s3_arn(request.bucket, request.key or None)[:1100],
            "outcome": outcome,
            "request_id": request.request_id,
            "source": (request.scope.get("client") or (None,))[0],
        }
        if principal is not None:
            record["access_key_id"] = principal.access_key_id
        try:
            self.audit.append(record)
        except OSError:
            log.exception("the audit record of S3 request %s could not be written", request.request_id)
