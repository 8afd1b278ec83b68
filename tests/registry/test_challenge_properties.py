"""Properties of WWW-Authenticate parsing: any header value gives a list of challenges (a registry's
junk never raises), and challenges written by RFC 7235's rules parse back as they were written."""

from __future__ import annotations

import httpx
from hypothesis import example, given
from hypothesis import strategies as st

from forklift.registry.challenge import Challenge, parse_challenges, parse_response_challenges

_TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # RFC 7230's tchar
token = st.text(_TCHAR, min_size=1, max_size=12)
# Any printable text but control characters, which a header value cannot carry.
value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def challenges(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    scheme = draw(token)
    params = draw(st.dictionaries(token.map(str.lower), value, max_size=4))
    return scheme, params


@given(st.text(max_size=200))
@example('Bearer realm="unterminated')
@example('Bearer realm=, ,,,= "x"')
@example("\\" * 50)
def test_any_header_value_parses_to_challenges(header: str) -> None:
    parsed = parse_challenges(header)
    assert all(isinstance(c, Challenge) and c.scheme == c.scheme.lower() for c in parsed)
    assert all(k == k.lower() for c in parsed for k in c.params)
    assert all(isinstance(c.scopes, list) for c in parsed)


@given(st.lists(challenges(), min_size=1, max_size=3))
def test_written_challenges_parse_back(written: list[tuple[str, dict[str, str]]]) -> None:
    header = ", ".join(
        scheme + (" " + ",".join(f"{k}={quoted(v)}" for k, v in params.items()) if params else "")
        for scheme, params in written)
    parsed = parse_challenges(header)
    assert [(c.scheme, c.params) for c in parsed] == [(s.lower(), p) for s, p in written]


@given(st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60), max_size=3))
def test_every_header_of_a_response_is_read(values: list[str]) -> None:
    headers = httpx.Headers([("www-authenticate", v) for v in values])
    assert len(parse_response_challenges(headers)) == sum(len(parse_challenges(v)) for v in values)
