"""Properties of image reference parsing: any text is a Reference or InvalidReference, and what parses
prints back to a string that parses to the same Reference."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from forklift.reference import InvalidReference, parse, parse_digest

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
path_component = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest),
                           _alnum, st.lists(st.tuples(_separator, _alnum), max_size=2))
_label_char = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
domain_label = st.sampled_from(_label_char) | st.builds(
    lambda first, middle, last: first + middle + last, st.sampled_from(_label_char),
    st.text(_label_char + "-", max_size=5), st.sampled_from(_label_char))
registry = st.one_of(
    st.just("localhost"),
    st.builds(lambda labels: ".".join(labels), st.lists(domain_label, min_size=2, max_size=3)),
).flatmap(lambda host: st.one_of(st.just(host), st.integers(1, 65535).map(lambda port: f"{host}:{port}")))
tag = st.builds(str.__add__, st.sampled_from(_label_char + "_"), st.text(_label_char + "_.-", max_size=20))
digest = st.one_of(st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h),
                   st.text("0123456789abcdef", min_size=128, max_size=128).map(lambda h: "sha512:" + h))


@st.composite
def references(draw: st.DrawFn) -> str:
    host = draw(st.one_of(st.none(), registry))
    components = draw(st.lists(path_component, min_size=1, max_size=3))
    if host is None and "." in components[0] and len(components) > 1:
        components[0] = components[0].replace(".", "-")  # docker reads a first component with '.' as a host
    path = "/".join(components)
    text = f"{host}/{path}" if host else path
    if draw(st.booleans()):
        text += ":" + draw(tag)
    if draw(st.booleans()):
        text += "@" + draw(digest)
    return text


@given(references())
@example("ubuntu")
@example("index.docker.io/ubuntu")
@example("localhost/a:1")
def test_a_valid_reference_round_trips(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference as exc:
        # The generator can exceed the 255-character name bound or spell an uppercase host as a namespace.
        assert "longer than" in str(exc) or "lowercase" in str(exc), str(exc)
        return
    assert parse(str(ref)) == ref
    assert parse(ref.familiar()) == ref
    assert ref.identifier in (ref.tag, ref.digest)
    assert str(ref).startswith(ref.registry + "/")


@given(st.text(max_size=80))
@example("a" * 300)
@example("sha256:" + "a" * 64)
@example("a@sha256:" + "A" * 64)
@example("x:5000/\n")
def test_any_text_parses_or_is_an_invalid_reference(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference:
        return
    assert parse(str(ref)) == ref


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=140))
def test_any_digest_text_is_valid_or_an_invalid_reference(text: str) -> None:
    try:
        assert parse_digest(text) == text
    except InvalidReference:
        return
    assert text.split(":")[0] in ("sha256", "sha512")


@given(references(), st.text(max_size=30))
def test_with_tag_accepts_only_what_parse_accepts(text: str, new_tag: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference:
        return
    try:
        tagged = ref.with_tag(new_tag)
    except InvalidReference:
        with pytest.raises(InvalidReference):
            parse(f"{ref.name}:{new_tag}")
        return
    assert parse(str(tagged)) == tagged
