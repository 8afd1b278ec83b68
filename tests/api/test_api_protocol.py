"""Wire helpers: JSON encoding, ARNs, SigV4 scope parsing, pagination tokens, Java-style rendering."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from forklift.api import ApiError, arn, decode_token, encode_token, keyset_page
from forklift.api.context import parse_sigv4
from forklift.api.coral import hashmap_order, java_double, render_value
from forklift.api.protocol import dumps
from forklift.api.tokens import decode_event_token, encode_event_token

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_arn_lower_cases_the_name() -> None:
    assert arn("training-job", "My-Job", "us-west-2", "123456789012") == \
        "arn:aws:sagemaker:us-west-2:123456789012:training-job/my-job"
    assert arn("endpoint", "DEMO-Endpoint", "us-east-1", "000000000000").endswith(":endpoint/demo-endpoint")


def test_dumps_epoch_floats_and_drops_none() -> None:
    body = json.loads(dumps({"CreationTime": T0 + timedelta(milliseconds=250), "Naive": datetime(2024, 1, 1),
                             "FailureReason": None, "Nested": [{"Blob": b"hi", "X": None}]}))
    assert body == {"CreationTime": 1704067200.25, "Naive": 1704067200.0, "Nested": [{"Blob": "aGk="}]}
    with pytest.raises(TypeError):
        dumps({"x": object()})


@pytest.mark.parametrize(("header", "expected"), [
    ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-west-2/sagemaker/aws4_request, "
     "SignedHeaders=host;x-amz-date, Signature=abc", ("AKIDEXAMPLE", "us-west-2", "sagemaker")),
    ("AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-central-1/logs/aws4_request,SignedHeaders=host,Signature=0",
     ("AKID", "eu-central-1", "logs")),
    ("Bearer xyz", None),
    ("AWS4-HMAC-SHA256 Credential=AKID/20240101/US WEST/sagemaker/aws4_request", None),
    (None, None),
])
def test_parse_sigv4(header, expected) -> None:
    scope = parse_sigv4(header)
    assert (None if scope is None else (scope.access_key_id, scope.region, scope.service)) == expected


def test_token_round_trip_and_kind_binding() -> None:
    token = encode_token((T0, "job-7"), kind="ListTrainingJobs:CreationTime")
    assert "job-7" not in token  # opaque, URL-safe
    assert decode_token(token, kind="ListTrainingJobs:CreationTime") == (T0, "job-7")
    with pytest.raises(ApiError) as excinfo:
        decode_token(token, kind="ListModels:CreationTime")
    assert excinfo.value.code == "ValidationException"


@pytest.mark.parametrize("garbage", ["", "!!!", "bm90IGpzb24", base64.urlsafe_b64encode(b'{"v":9}').decode(),
                                     base64.urlsafe_b64encode(b'{"v":1,"k":"","p":[{"x":1}]}').decode()])
def test_garbage_tokens_are_validation_errors(garbage: str) -> None:
    with pytest.raises(ApiError) as excinfo:
        decode_token(garbage)
    assert excinfo.value.code == "ValidationException"


def test_keyset_pages_stay_correct_while_items_are_created() -> None:
    items = [(T0 + timedelta(seconds=i), f"job-{i}") for i in range(5)]

    def key(item):
        return item

    page1, token = keyset_page(items, key, token=None, limit=2, descending=True, kind="k")
    assert [n for _, n in page1] == ["job-4", "job-3"]
    items.append((T0 + timedelta(seconds=10), "job-new"))  # newer than the cursor: must not shift pages
    page2, token = keyset_page(items, key, token=token, limit=2, descending=True, kind="k")
    assert [n for _, n in page2] == ["job-2", "job-1"]
    items.remove(page2[0])
    page3, token = keyset_page(items, key, token=token, limit=2, descending=True, kind="k")
    assert [n for _, n in page3] == ["job-0"] and token is None


def test_keyset_ties_on_sort_key_are_broken_by_name() -> None:
    items = [(T0, name) for name in "edcba"]
    seen, token = [], None
    while True:
        page, token = keyset_page(items, lambda i: i, token=token, limit=2)
        seen += [n for _, n in page]
        if token is None:
            break
    assert seen == list("abcde")


def test_event_tokens() -> None:
    assert encode_event_token("f", 12).startswith("f/") and decode_event_token(encode_event_token("b", 7)) == ("b", 7)
    with pytest.raises(ApiError) as excinfo:
        decode_event_token("x/12")
    assert excinfo.value.code == "InvalidParameterException"


def test_java_rendering() -> None:
    assert [java_double(v) for v in (1.0, 0.5, 1e7, 1.5e-4, 0.0)] == ["1.0", "0.5", "1.0E7", "1.5E-4", "0.0"]
    assert render_value({"b": [1, True], "a": "x"}) == "{a=x, b=[1, true]}"
    assert render_value(b"abc") == "java.nio.HeapByteBuffer[pos=0 lim=3 cap=3]"
    # the member order AWS reports violations in (from published multi-error messages)
    assert hashmap_order(["catalogId", "databaseName", "tableName", "region", "versionId", "roleARN"]) == \
        ["versionId", "catalogId", "databaseName", "roleARN", "region", "tableName"]
