"""Container image references, parsed and normalized the way docker and containerd do it.

`ubuntu` and `docker.io/library/ubuntu:latest` must mean the same image everywhere in forklift
(credential lookup, caches, the database), so every user-supplied image name goes through `parse`.
Grammar and normalization rules: distribution/reference (`reference.go`, `normalize.go`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from forklift.errors import ForkliftError

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API_HOST",
    "ECR_HOST",
    "InvalidReference",
    "Reference",
    "normalize_registry",
    "parse",
    "parse_digest",
]

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
# Amazon ECR registry hosts, `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` (use fullmatch):
# groups are the account, "-fips" or None, the region, ".cn" or None.
ECR_HOST = re.compile(r"(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")
# Names users and docker's config.json use for Docker Hub; all of them mean DOCKER_HUB.
_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API_HOST})
_OFFICIAL_PREFIX = "library/"
_NAME_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# IPv4 addresses already match the dotted domain-name form; IPv6 is as loose as docker's.
_DOMAIN_RE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# re.ASCII: Go's \w is ASCII-only.
_TAG_RE = re.compile(r"\w[\w.-]*", re.ASCII)
_TAG_MAX = 128
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")
_DIGEST_RE = re.compile(r"([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9a-fA-F]{32,})")
# The grammar allows any algorithm and 32+ hex digits; go-digest (what registries check) is strict.
_DIGEST_HEX_LEN = {"sha256": 64, "sha512": 128}


class InvalidReference(ForkliftError, ValueError):
    """An image reference, digest or tag that docker would reject."""


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        # Docker and containerd pull by digest when both are given; the tag is informational.
        ident = self.digest or self.tag
        assert ident is not None, "a Reference always has a tag or a digest"
        return ident

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=parse_digest(digest))

    def with_tag(self, tag: str) -> Reference:
        reason = _tag_problem(tag)
        if reason:
            raise InvalidReference(f"invalid tag {tag!r}: {reason}")
        return replace(self, tag=tag, digest=None)

    def familiar_name(self) -> str:
        """The name as docker shows it: `ubuntu`, `org/app`, `ghcr.io/org/app` (no tag, no digest)."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository
            rest = name.removeprefix(_OFFICIAL_PREFIX)
            # Only strip "library/" when what is left still normalizes back to the same name.
            if rest != name and "/" not in rest:
                name = rest
        return name

    def familiar(self) -> str:
        return self.familiar_name() + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse(text: str, *, default_tag: str = "latest") -> Reference:
    """Parse a reference as `docker pull` would, filling in docker.io, library/ and the default tag."""

    def fail(reason: str) -> InvalidReference:
        return InvalidReference(f"invalid reference {text!r}: {reason}")

    if not text:
        raise InvalidReference("empty reference")
    if _IMAGE_ID_RE.fullmatch(text):
        raise fail("looks like an image ID, not a reference")
    if "://" in text:
        raise fail("a reference has no URL scheme; write host/repository[:tag]")
    m = _DIGEST_RE.fullmatch(text)
    if m and m.group(1) in _DIGEST_HEX_LEN:
        # Docker would read this as docker.io/library/sha256 with a tag, which is never meant.
        raise fail("looks like a bare digest; write repository@digest")

    rest, at, digest = text.partition("@")
    if at:
        reason = _digest_problem(digest) if digest else "empty digest after '@'"
        if reason:
            raise fail(f"invalid digest: {reason}")

    if not rest:
        raise fail("missing repository name")
    # A tag can only follow the last '/', so 'host:5000/repo' has a port, not a tag.
    slash = rest.rfind("/")
    colon = rest.find(":", slash + 1)
    tag: str | None = None
    if colon != -1:
        rest, tag = rest[:colon], rest[colon + 1 :]
        reason = _tag_problem(tag)
        if reason:
            raise fail(reason)

    registry, repository = _split_domain(rest, fail)
    if len(registry) + 1 + len(repository) > _NAME_MAX:
        raise fail(f"repository name longer than {_NAME_MAX} characters")

    if tag is None and not digest:
        reason = _tag_problem(default_tag)
        if reason:
            raise InvalidReference(f"invalid default tag {default_tag!r}: {reason}")
        tag = default_tag
    return Reference(registry, repository, tag, digest or None)


def parse_digest(text: str) -> str:
    """Validate a content digest as registries do: `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase."""
    reason = _digest_problem(text)
    if reason:
        raise InvalidReference(f"invalid digest {text!r}: {reason}")
    return text


def normalize_registry(host: str) -> str:
    """The registry key for a host as users and docker's config.json write it.

    `https://index.docker.io/v1/` -> `docker.io`; `HTTP://Localhost:5000/` -> `localhost:5000`.
    """
    host = host.strip()
    host = host.split("://", 1)[1] if "://" in host else host
    host = host.split("/", 1)[0].lower()
    if not host:
        raise InvalidReference("empty registry host")
    return DOCKER_HUB if host in _HUB_ALIASES else host


def _split_domain(name: str, fail: Callable[[str], InvalidReference]) -> tuple[str, str]:
    first, slash, remainder = name.partition("/")
    # Docker's heuristic; an all-lowercase first component without '.' or ':' is a Hub namespace.
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN_RE.fullmatch(first):
            raise fail(f"invalid registry host {first!r}")
        # Hostnames are case-insensitive; one spelling keeps credential and cache keys stable.
        registry = first.lower()
        registry = DOCKER_HUB if registry == "index.docker.io" else registry
    else:
        if slash and first != first.lower() and remainder == remainder.lower() and _DOMAIN_RE.fullmatch(first):
            # Newer docker would treat 'Foo' as a host; a mistyped Hub namespace is far more likely.
            raise fail(
                "repository name must be lowercase "
                f"(for a registry host named {first!r}, add its port: '{first}:443/{remainder}')"
            )
        registry, remainder = DOCKER_HUB, name

    components = remainder.split("/")
    for component in components:
        if not component:
            raise fail("empty path component (check for '//' or a leading or trailing '/')")
        if component != component.lower():
            raise fail("repository name must be lowercase")
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise fail(
                f"invalid path component {component!r}: use lowercase letters and digits, "
                "separated by '.', '_', '__' or '-'"
            )
    if registry == DOCKER_HUB and len(components) == 1:
        remainder = _OFFICIAL_PREFIX + remainder
    return registry, remainder


def _tag_problem(tag: str) -> str | None:
    if not tag:
        return "empty tag"
    if len(tag) > _TAG_MAX:
        return f"tag longer than {_TAG_MAX} characters"
    if not _TAG_RE.fullmatch(tag):
        return "a tag is letters, digits, '_', '.' and '-', and must not start with '.' or '-'"
    return None


def _digest_problem(text: str) -> str | None:
    m = _DIGEST_RE.fullmatch(text)
    if not m:
        return "expected algorithm:hex, e.g. sha256:<64 hex>"
    algorithm, hex_part = m.groups()
    expected = _DIGEST_HEX_LEN.get(algorithm)
    if expected is None:
        return f"unsupported algorithm {algorithm!r} (use sha256 or sha512)"
    if len(hex_part) != expected or hex_part != hex_part.lower():
        return f"{algorithm} digests are {expected} lowercase hex characters"
    return None
