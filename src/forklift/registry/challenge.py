"""Parse `WWW-Authenticate` headers (RFC 7235 auth-params: quoted strings may hold commas and escapes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})")
_PARAM_RE = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*')
_UNESCAPE_RE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-cased: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)  # keys lower-cased

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> list[str]:
        return [s for s in self.params.get("scope", "").split(" ") if s]

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in one header value, e.g. `Bearer realm="x",service="y", Basic realm="z"`."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        if header[pos] in ", \t":
            pos += 1
            continue
        scheme = _SCHEME_RE.match(header, pos)
        if not scheme:
            break
        pos = scheme.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM_RE.match(header, pos)
            if not param:
                break
            quoted, bare = param.group(2), param.group(3)
            value = _UNESCAPE_RE.sub(r"\1", quoted) if quoted is not None else bare
            params[param.group(1).lower()] = value
            pos = param.end()
            if pos < len(header) and header[pos] == ",":
                pos += 1
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def parse_response_challenges(headers: httpx.Headers) -> list[Challenge]:
    """Challenges from every `WWW-Authenticate` header of a response."""
    found: list[Challenge] = []
    for value in headers.get_list("www-authenticate"):
        found.extend(parse_challenges(value))
    return found
