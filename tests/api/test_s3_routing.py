"""Which requests on forklift serve's port are S3's (api.s3routing), and the operation each one is (api.s3api)."""

from __future__ import annotations

import pytest

from forklift.api.authz import authorize_s3, s3_arn
from forklift.api.edge import body_seconds
from forklift.api.s3api import operation_of
from forklift.api.s3errors import S3Error
from forklift.api.s3routing import host_name, is_s3, signed_service, target, virtual_bucket
from forklift.api.sigv4 import Principal
from forklift.api.wiring import s3_virtual_hosts
from forklift.config import ConfigError, Settings
from forklift.credentials.policy import compile_policy

BASES = ("localhost", "s3.forklift.test")


def scope(method: str, path: str, query: str = "", host: str = "127.0.0.1:8080", **headers: str) -> dict:
    fields = [(b"host", host.encode())]
    fields += [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "headers": fields}


def signed(service: str) -> str:
    return (f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc")


def test_a_bucket_named_endpoints_signed_for_s3_is_s3_and_invoke_signed_for_sagemaker_is_not():
    upload = scope("POST", "/endpoints/x/invocations", "uploads", authorization=signed("s3"))
    assert is_s3(upload, BASES)
    assert target(upload, BASES).bucket == "endpoints" and target(upload, BASES).key == "x/invocations"
    assert operation_of("POST", "endpoints", "x/invocations", {"uploads": ""}, {}) == "CreateMultipartUpload"
    invoke = scope("POST", "/endpoints/x/invocations", authorization=signed("sagemaker"))
    assert not is_s3(invoke, BASES)
    assert not is_s3(scope("POST", "/endpoints/x/invocations"), BASES)  # unsigned, no query: InvokeEndpoint
    assert is_s3(scope("POST", "/endpoints/x/invocations", "uploads"), BASES)  # unsigned with a query: S3


def test_a_bucket_named_ping_signed_for_s3_is_s3_and_the_health_check_is_not():
    assert is_s3(scope("GET", "/ping", "list-type=2", authorization=signed("s3")), BASES)
    assert is_s3(scope("HEAD", "/ping", authorization=signed("s3")), BASES)
    assert not is_s3(scope("GET", "/ping"), BASES)
    assert not is_s3(scope("GET", "/ping", authorization=signed("sagemaker")), BASES)


def test_the_other_apis_routes_are_not_s3():
    assert not is_s3(scope("POST", "/", **{"x_amz_target": "SageMaker.ListEndpoints"}), BASES)
    assert not is_s3(scope("POST", "/", authorization=signed("logs")), BASES)
    assert not is_s3(scope("GET", "/_forklift/kubernetes/endpoints/x"), BASES)
    assert not is_s3(scope("POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData"), BASES)
    assert is_s3(scope("GET", "/"), BASES)  # unsigned ListBuckets
    assert is_s3(scope("PUT", "/bucket/key"), BASES)


def test_presigned_and_sigv2_requests_name_their_service():
    presigned = scope("GET", "/b/k", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-east-1"
                                     "%2Fs3%2Faws4_request&X-Amz-Signature=ab")
    assert signed_service(presigned) == "s3"
    assert signed_service(scope("GET", "/b/k", "AWSAccessKeyId=AKID&Signature=x&Expires=1")) == "s3"
    assert signed_service(scope("GET", "/b/k", authorization="AWS AKID:sig")) == "s3"
    assert signed_service(scope("GET", "/b/k")) is None


def test_virtual_host_style_takes_the_bucket_from_the_host_and_never_from_an_ip():
    request = scope("GET", "/a/b.txt", host="my-bucket.s3.forklift.test:9000")
    assert host_name(request) == "my-bucket.s3.forklift.test"
    assert is_s3(request, BASES)
    located = target(request, BASES)
    assert (located.bucket, located.key, located.virtual) == ("my-bucket", "a/b.txt", True)
    assert virtual_bucket("data.localhost", BASES) == "data"
    assert virtual_bucket("127.0.0.1", BASES) is None
    assert virtual_bucket("localhost", BASES) is None
    assert virtual_bucket("other.example.com", BASES) is None
    # a dotted bucket name under a suffix
    assert virtual_bucket("logs.2026.localhost", BASES) == "logs.2026"


def test_keys_are_percent_decoded_from_the_raw_path():
    request = scope("GET", "/b/ignored")
    request["raw_path"] = b"/b/a%20b/%E2%82%AC%2Fc"
    assert target(request, BASES).key == "a b/€/c"


@pytest.mark.parametrize(("method", "bucket", "key", "query", "headers", "operation"), [
    ("GET", "", "", {}, {}, "ListBuckets"),
    ("GET", "b", "", {"list-type": "2"}, {}, "ListObjectsV2"),
    ("GET", "b", "", {}, {}, "ListObjects"),
    ("GET", "b", "", {"location": ""}, {}, "GetBucketLocation"),
    ("POST", "b", "", {"delete": ""}, {}, "DeleteObjects"),
    ("PUT", "b", "k", {}, {"x-amz-copy-source": "b/j"}, "CopyObject"),
    ("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"}, {}, "UploadPart"),
    ("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"}, {"x-amz-copy-source": "b/j"}, "UploadPartCopy"),
    ("POST", "b", "k", {"uploadId": "u"}, {}, "CompleteMultipartUpload"),
    ("DELETE", "b", "k", {"uploadId": "u"}, {}, "AbortMultipartUpload"),
    ("GET", "b", "k", {"uploadId": "u"}, {}, "ListParts"),
    ("GET", "b", "k", {"x-id": "GetObject", "response-content-type": "text/plain"}, {}, "GetObject"),
])
def test_operations(method, bucket, key, query, headers, operation):
    assert operation_of(method, bucket, key, query, headers) == operation


def test_unknown_sub_resources_are_not_implemented_and_wrong_methods_not_allowed():
    with pytest.raises(S3Error) as caught:
        operation_of("GET", "b", "", {"acl": ""}, {})
    assert (caught.value.code, caught.value.status) == ("NotImplemented", 501)
    with pytest.raises(S3Error) as caught:
        operation_of("POST", "b", "k", {}, {})
    assert (caught.value.code, caught.value.status) == ("MethodNotAllowed", 405)


def test_s3_policies_use_aws_actions_and_arns():
    policy = compile_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/public/*"]}]})
    reader = Principal("AKIDREADER", "reader", policy)
    authorize_s3(reader, "000000000000", "s3:GetObject", s3_arn("data", "public/a.csv"))
    authorize_s3(reader, "000000000000", "s3:ListBucket", s3_arn("data"))
    with pytest.raises(S3Error) as caught:
        authorize_s3(reader, "000000000000", "s3:PutObject", s3_arn("data", "public/a.csv"))
    assert (caught.value.code, caught.value.status) == ("AccessDenied", 403)
    assert "arn:aws:iam::000000000000:user/reader" in caught.value.message
    with pytest.raises(S3Error):
        authorize_s3(reader, "000000000000", "s3:GetObject", s3_arn("data", "private/b"))


def test_a_body_gets_time_for_the_length_it_declares():
    assert body_seconds(60, []) == 60
    assert body_seconds(60, [(b"content-length", str(64 * 1024 * 100).encode())]) == 160


def test_virtual_host_names_come_from_config_and_the_bound_host_name(tmp_path):
    (tmp_path / "config.toml").write_text('[server]\ns3_virtual_host_suffixes = ["S3.Lan", "objects.example.com"]\n')
    settings = Settings(home=tmp_path)
    assert s3_virtual_hosts(settings, "forklift.internal") == ("localhost", "s3.lan", "objects.example.com",
                                                                "forklift.internal")
    assert s3_virtual_hosts(settings, "10.0.0.5") == ("localhost", "s3.lan", "objects.example.com")
    assert s3_virtual_hosts(settings, "::1") == ("localhost", "s3.lan", "objects.example.com")
    (tmp_path / "config.toml").write_text('[server]\ns3_virtual_host_suffixes = ["http://s3.lan"]\n')
    with pytest.raises(ConfigError) as caught:
        s3_virtual_hosts(settings)
    assert "s3_virtual_host_suffixes" in str(caught.value) and "not a host name" in str(caught.value)
