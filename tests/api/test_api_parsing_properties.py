"""Properties of request parsing: whatever bytes, JSON or headers a client sends, the body parser, the
nesting scan, the validator and the SigV4 readers answer with a value or the documented refusal
(`ApiError`, `SignatureRejected`, None), never with another exception."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from forklift.api.awsjson import parse_body
from forklift.api.context import SigV4Scope, parse_sigv4
from forklift.api.errors import ApiError
from forklift.api.jsondepth import MAX_DEPTH, nests_deeper
from forklift.api.sigv4 import Principal, SignatureRejected, verify
from forklift.api.validation import operation_model, validate

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=12)
                | st.integers(min_value=2**63, max_value=2**70) | st.just(1.5))
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=20)
OPERATIONS = [("sagemaker", "CreateTrainingJob"), ("sagemaker", "ListTrainingJobs"), ("sagemaker", "CreateModel"),
              ("sagemaker", "CreateEndpointConfig"), ("sagemaker", "UpdateEndpointWeightsAndCapacities"),
              ("sagemaker", "Search"), ("logs", "PutLogEvents"), ("logs", "FilterLogEvents"),
              ("logs", "GetLogEvents"), ("sagemaker-runtime", "InvokeEndpoint")]


def _members(service: str, operation: str) -> list[str]:
    model = operation_model(service, operation)
    assert model is not None and model.input_shape is not None
    return list(model.input_shape.members)


@st.composite
def shaped_bodies(draw: st.DrawFn) -> tuple[str, str, dict]:
    """A body naming the operation's real members, each holding any JSON at all (and nested members too)."""
    service, operation = draw(st.sampled_from(OPERATIONS))
    names = _members(service, operation)
    body = draw(st.dictionaries(st.sampled_from(names), json_values, max_size=len(names)))
    return service, operation, body


@given(st.binary(max_size=300))
@example(b"[" * 10_000)
@example(b'{"a": NaN}')
@example(b'{"a": Infinity}')
@example(b'{"a": "\\ud800"}')
@example(b'{"a": 1, "a": 2}')
@example(b"\xed\xa0\x80")
@example(b"1" * 5000)
def test_any_body_is_a_document_or_a_serialization_error(body: bytes) -> None:
    try:
        parse_body(body)
    except ApiError as exc:
        assert exc.code == "SerializationException" and exc.status == 400


@given(json_values)
def test_a_json_document_parses_to_itself(document: object) -> None:
    body = json.dumps(document).encode()
    assert parse_body(body) == (document if body.strip() else {})


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


nested = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text("[]{}\"\\a", max_size=3),
                                                                              inner, max_size=2),
    max_leaves=80)


@given(nested, st.integers(0, 8))
def test_the_nesting_scan_agrees_with_the_parsed_depth(document: object, limit: int) -> None:
    assert nests_deeper(json.dumps(document).encode(), limit) is (_depth(document) > limit)


@given(st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2), st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]))
def test_the_nesting_scan_at_its_bound(depth: int, brackets: tuple[bytes, bytes]) -> None:
    opening, closing = brackets
    body = opening * depth + b"1" + closing * depth
    assert nests_deeper(body) is (depth > MAX_DEPTH)


@given(shaped_bodies())
@example(("sagemaker", "CreateTrainingJob", {"ResourceConfig": {"InstanceCount": 0}}))
@example(("sagemaker", "CreateTrainingJob", {"StoppingCondition": {"MaxRuntimeInSeconds": 1.5}}))
@example(("sagemaker", "CreateTrainingJob", {"HyperParameters": {"a": 1}, "Tags": {"Key": "k"}}))
@example(("sagemaker", "ListTrainingJobs", {"MaxResults": 2**80, "CreationTimeAfter": "not a date"}))
@example(("sagemaker", "ListTrainingJobs", {"CreationTimeAfter": 1e300}))
@example(("sagemaker-runtime", "InvokeEndpoint", {"Body": "not base64!", "EndpointName": "e"}))
def test_any_shaped_body_validates_or_is_an_api_error(case: tuple[str, str, dict]) -> None:
    service, operation, body = case
    try:
        result = validate(service, operation, body)
    except ApiError as exc:
        assert exc.code in ("ValidationException", "SerializationException") and exc.status == 400
        assert exc.message
        return
    assert set(result) <= set(body)


@given(st.sampled_from(OPERATIONS), json_values)
def test_any_json_validates_or_is_an_api_error(operation: tuple[str, str], document: object) -> None:
    try:
        validate(*operation, document)
    except ApiError as exc:
        assert exc.status == 400


@given(st.one_of(st.none(), st.text(max_size=200)), st.one_of(st.none(), st.text(max_size=80)))
@example("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/sagemaker/aws4_request", None)
@example(None, "AKID/20240101/US_WEST/sagemaker/aws4_request")
def test_any_authorization_header_is_a_scope_or_none(authorization: str | None, query: str | None) -> None:
    scope = parse_sigv4(authorization, query)
    assert scope is None or isinstance(scope, SigV4Scope)
    if scope is not None:
        assert scope.date.isascii() and len(scope.date) == 8


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=120)
authorization = st.one_of(
    header_text,
    st.builds(lambda c, h, s: f"AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}",
              st.one_of(header_text, st.builds("/".join, st.lists(st.text("AKID2024us-east-1/_", max_size=8),
                                                                  min_size=1, max_size=6))),
              st.one_of(header_text, st.just("host;x-amz-date")), st.text("0123456789abcdef", max_size=64)),
)


@given(authorization, st.one_of(st.none(), header_text, st.just("20240101T000000Z")),
       st.one_of(st.none(), header_text), st.text(max_size=60), st.binary(max_size=40))
@example("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date,"
         " Signature=00", "20240101T000000Z", None, "", b"")
@example("", None, "Tue, 32 Foo 2024", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=-1", b"")
def test_any_signature_headers_are_a_principal_or_signature_rejected(
        auth: str, amz_date: str | None, date: str | None, query: str, body: bytes) -> None:
    headers = [("host", "forklift"), ("authorization", auth)]
    headers += [("x-amz-date", amz_date)] if amz_date is not None else []
    headers += [("date", date)] if date is not None else []
    for items in (headers, headers[1:]):
        try:
            principal = verify("POST", "/?" + query, items, body, lambda key: ("secret", "name"), now=1704067200.0)
        except SignatureRejected as exc:
            assert exc.code.endswith("Exception") and exc.status == 400
        else:
            assert isinstance(principal, Principal)


@given(st.text(max_size=200), st.binary(max_size=20))
def test_any_presigned_query_is_a_principal_or_signature_rejected(query: str, body: bytes) -> None:
    try:
        verify("GET", "/?X-Amz-Algorithm=" + query, [("host", "forklift")], body, lambda key: None)
    except SignatureRejected as exc:
        assert exc.status == 400


def test_a_lone_surrogate_escape_is_a_serialization_error_and_a_pair_is_a_character() -> None:
    # Found by the hostile corpus: "\ud800" parsed to a str that RE2's pattern check (and SQLite) could not
    # encode, and the request ended in InternalFailure.
    for body in (b'{"TrainingJobName": "a\\ud800"}', b'{"\\udc00": 1}', b'["\\udbff\\udbff"]'):
        try:
            parse_body(body)
        except ApiError as exc:
            assert exc.code == "SerializationException" and "surrogate" in exc.message
        else:
            raise AssertionError(f"{body!r} was accepted")
    assert parse_body(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {"a": "\U0001f600", "b": "\\ud800"}
