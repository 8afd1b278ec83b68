"""SigV4 verification against requests botocore signs, and against what a real boto3 client sends."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from forklift.api.sigv4 import Principal, SignatureRejected, verify

KEY = "AKIDFORKLIFTSIGV4"
SECRET = "forklift-sigv4-secret/with+odd=chars"
KEYS = {KEY: (SECRET, "alice"), "AKIDNAMELESS": ("other-secret", None)}
ENDPOINT = "http://localhost:8080"


def lookup(access_key_id: str) -> tuple[str, str | None] | None:
    return KEYS.get(access_key_id)


def signed(method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"", *,
           service: str = "sagemaker", region: str = "us-east-1", key: str = KEY, secret: str = SECRET,
           token: str | None = None) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path_and_query, headers, body) as they reach the server, signed as boto3 signs them."""
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    SigV4Auth(Credentials(key, secret, token), service, region).add_auth(request)
    prepared = request.prepare()
    split = urlsplit(prepared.url)
    wire = dict(prepared.headers.items())
    wire["Host"] = split.netloc  # http.client adds it from the URL
    return method, split.path + (f"?{split.query}" if split.query else ""), wire, body


def rejected(request: tuple[str, str, dict[str, str], bytes], **kwargs: float) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as caught:
        verify(*request, lookup, **kwargs)
    return caught.value


def json_request(target: str = "SageMaker.ListTrainingJobs", body: bytes = b'{"MaxResults": 5}',
                 **kwargs: object) -> tuple[str, str, dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    return signed("POST", f"{ENDPOINT}/", headers, body, **kwargs)  # type: ignore[arg-type]


def with_auth(request: tuple[str, str, dict[str, str], bytes], authorization: str | None
              ) -> tuple[str, str, dict[str, str], bytes]:
    method, target, headers, body = request
    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return method, target, headers, body


# What botocore signs.

def test_sagemaker_json_request_verifies() -> None:
    assert verify(*json_request(), lookup) == Principal(KEY, "alice")


def test_a_key_without_a_name() -> None:
    request = json_request(key="AKIDNAMELESS", secret="other-secret")
    assert verify(*request, lookup) == Principal("AKIDNAMELESS", None)


def test_runtime_invocation_with_a_binary_body() -> None:
    body = bytes(range(256)) * 4
    request = signed("POST", f"{ENDPOINT}/endpoints/my-ep/invocations",
                     {"Content-Type": "application/octet-stream", "Accept": "*/*"}, body)
    assert verify(*request, lookup) == Principal(KEY, "alice")


def test_logs_request_verifies() -> None:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.DescribeLogGroups"}
    request = signed("POST", f"{ENDPOINT}/", headers, b"{}", service="logs", region="eu-west-1")
    assert verify(*request, lookup) == Principal(KEY, "alice")


def test_percent_encoded_path_and_unsorted_query() -> None:
    request = signed("GET", f"{ENDPOINT}/endpoints/my%20ep%2Fx/invocations?b=2&a=%2F1&a=0")
    assert request[1] == "/endpoints/my%20ep%2Fx/invocations?b=2&a=%2F1&a=0"
    assert verify(*request, lookup).access_key_id == KEY


def test_header_value_with_runs_of_spaces() -> None:
    request = json_request()
    request = signed("POST", f"{ENDPOINT}/", {**request[2], "X-Amz-Custom": "  a   b  c  "}, request[3])
    assert request[2]["X-Amz-Custom"] == "  a   b  c  "
    assert verify(*request, lookup).name == "alice"


def test_headers_as_asgi_byte_pairs() -> None:
    method, target, headers, body = json_request()
    pairs = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    assert verify(method, target, pairs, body, lookup).name == "alice"


def test_security_token_is_signed_and_accepted() -> None:
    request = json_request(token="session-token")
    assert request[2]["X-Amz-Security-Token"] == "session-token"
    assert verify(*request, lookup).name == "alice"
    method, target, headers, body = request
    assert rejected((method, target, {**headers, "X-Amz-Security-Token": "other"}, body)).code == \
        "InvalidSignatureException"


def test_date_header_instead_of_x_amz_date() -> None:
    request = json_request()
    request = signed("POST", f"{ENDPOINT}/", {**request[2], "Date": "Mon, 01 Jan 2024 00:00:00 GMT"}, request[3])
    assert "X-Amz-Date" not in request[2]
    assert verify(*request, lookup).name == "alice"


def test_unsigned_payload_and_content_sha256() -> None:
    body = b'{"MaxResults": 5}'
    unsigned = json_request(body=body)
    unsigned = signed("POST", f"{ENDPOINT}/", {**unsigned[2], "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, body)
    assert verify(*unsigned[:3], b"anything", lookup).name == "alice"

    hashed = signed("POST", f"{ENDPOINT}/", {**unsigned[2], "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
                    body)
    assert verify(*hashed, lookup).name == "alice"
    error = rejected((*hashed[:3], body + b" "))
    assert (error.code, error.status) == ("InvalidSignatureException", 400)
    assert "x-amz-content-sha256" in error.message


def test_presigned_query() -> None:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/endpoints/my-ep/invocations?x=1")
    SigV4QueryAuth(Credentials(KEY, SECRET), "sagemaker", "us-east-1", expires=60).add_auth(request)
    split = urlsplit(request.prepare().url)
    presigned = ("GET", f"{split.path}?{split.query}", {"Host": split.netloc}, b"")
    assert verify(*presigned, lookup).name == "alice"
    error = rejected(presigned, now=time.time() + 120)
    assert error.code == "InvalidSignatureException" and error.message.startswith("Signature expired")
    tampered = (presigned[0], presigned[1].replace("x=1", "x=2"), *presigned[2:])
    assert rejected(tampered).code == "InvalidSignatureException"


# What a real boto3 client sends.

class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, list[tuple[str, str]], bytes]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, list(self.headers.items()), body))
        payload = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, list[tuple[str, str]], bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    seen: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
    _Recorder.seen = seen
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _client(service: str, url: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 1}))


def test_real_boto3_requests_verify(recorder: tuple[str, list[tuple[str, str, list[tuple[str, str]], bytes]]]
                                    ) -> None:
    url, seen = recorder
    _client("sagemaker", url).list_training_jobs(MaxResults=3, NameContains="a  b")
    _client("logs", url).describe_log_groups(logGroupNamePrefix="/aws/sagemaker")
    runtime = _client("sagemaker-runtime", url)
    runtime.invoke_endpoint(EndpointName="my ep", Body=b"\x00\x01\xfe\xff" * 100, ContentType="application/x-npy",
                            CustomAttributes="trace  id")
    assert len(seen) == 3
    assert seen[2][1] == "/endpoints/my%20ep/invocations"
    for method, target, headers, body in seen:
        assert verify(method, target, headers, body, lookup) == Principal(KEY, "alice")
    method, target, headers, body = seen[0]
    assert json.loads(body) == {"MaxResults": 3, "NameContains": "a  b"}
    with pytest.raises(SignatureRejected) as caught:
        verify(method, target, headers, body.replace(b"3", b"4"), lookup)
    assert caught.value.code == "InvalidSignatureException"


# Refusals, with AWS's codes.

def test_tampered_body() -> None:
    method, target, headers, body = json_request()
    error = rejected((method, target, headers, body.replace(b"5", b"6")))
    assert (error.code, error.status) == ("InvalidSignatureException", 400)
    assert error.message.startswith("The request signature we calculated does not match the signature you provided.")


def test_tampered_signed_header() -> None:
    method, target, headers, body = json_request()
    assert rejected((method, target, {**headers, "X-Amz-Target": "SageMaker.DeleteModel"}, body)).code == \
        "InvalidSignatureException"


def test_tampered_method_path_and_host() -> None:
    method, target, headers, body = json_request()
    assert rejected(("PUT", target, headers, body)).code == "InvalidSignatureException"
    assert rejected((method, "/other", headers, body)).code == "InvalidSignatureException"
    assert rejected((method, target, {**headers, "Host": "localhost:8081"}, body)).code == "InvalidSignatureException"


def test_unsigned_headers_may_change() -> None:
    method, target, headers, body = json_request()
    assert verify(method, target, {**headers, "User-Agent": "changed", "X-Extra": "1"}, body, lookup).name == "alice"


def test_signed_header_missing_from_the_request() -> None:
    method, target, headers, body = json_request()
    del headers["X-Amz-Target"]
    assert rejected((method, target, headers, body)).code == "InvalidSignatureException"


def test_wrong_secret() -> None:
    error = rejected(json_request(secret="not-the-secret"))
    assert (error.code, error.status) == ("InvalidSignatureException", 400)


def test_unknown_access_key() -> None:
    error = rejected(json_request(key="AKIDUNKNOWN"))
    assert (error.code, error.status, error.message) == (
        "UnrecognizedClientException", 400, "The security token included in the request is invalid.")


@pytest.mark.parametrize("minutes", [16, -16])
def test_clock_skew_over_15_minutes(minutes: int) -> None:
    request = json_request()
    error = rejected(request, now=time.time() + minutes * 60)
    assert error.code == "InvalidSignatureException"
    stamp = request[2]["X-Amz-Date"]
    if minutes > 0:
        assert error.message.startswith(f"Signature expired: {stamp} is now earlier than ")
        assert error.message.endswith(" - 15 min.)")
    else:
        assert error.message.startswith(f"Signature not yet current: {stamp} is still later than ")


@pytest.mark.parametrize("minutes", [14, -14])
def test_clock_skew_within_15_minutes(minutes: int) -> None:
    assert verify(*json_request(), lookup, now=time.time() + minutes * 60).name == "alice"


def test_missing_authentication() -> None:
    error = rejected(with_auth(json_request(), None))
    assert (error.code, error.status) == ("MissingAuthenticationTokenException", 400)


@pytest.mark.parametrize("mangle", [
    lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
    lambda a: a.split(", Signature=")[0],
    lambda a: a.replace("SignedHeaders=", "Signed="),
    lambda a: a.replace("Credential=", "Cred="),
    lambda a: a.replace("/us-east-1/", "/"),
    lambda a: a.replace("/aws4_request", "/aws5_request"),
    lambda a: "garbage",
    lambda a: "",
])
def test_malformed_authorization(mangle) -> None:  # type: ignore[no-untyped-def]
    request = json_request()
    error = rejected(with_auth(request, mangle(request[2]["Authorization"])))
    assert (error.code, error.status) == ("IncompleteSignatureException", 400)


def test_host_must_be_signed() -> None:
    request = json_request()
    authorization = request[2]["Authorization"].replace("SignedHeaders=content-type;host;",
                                                        "SignedHeaders=content-type;")
    assert authorization != request[2]["Authorization"]
    error = rejected(with_auth(request, authorization))
    assert error.code == "IncompleteSignatureException"
    assert error.message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def test_date_missing_or_unreadable() -> None:
    method, target, headers, body = json_request()
    without = {k: v for k, v in headers.items() if k != "X-Amz-Date"}
    assert rejected((method, target, without, body)).code == "IncompleteSignatureException"
    error = rejected((method, target, {**headers, "X-Amz-Date": "2024-01-01T00:00:00Z"}, body))
    assert error.code == "InvalidSignatureException" and "ISO-8601" in error.message


def test_scope_date_must_be_the_request_date() -> None:
    request = json_request()
    stamp = request[2]["X-Amz-Date"]
    authorization = request[2]["Authorization"].replace(f"/{stamp[:8]}/", "/20000101/")
    error = rejected(with_auth(request, authorization))
    assert error.code == "InvalidSignatureException" and "Credential scope" in error.message
