"""Token scopes (`repository:NAME:pull,push`) for registry requests."""

from __future__ import annotations

import re
from collections.abc import Iterable

_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)(?:/|$)")
_READ_METHODS = {"GET", "HEAD"}

# Requests may carry extra scopes (a cross-repository mount needs pull on the source repository).
EXTRA_SCOPES = "forklift.extra_scopes"


def repository_of(path: str) -> str | None:
    match = _REPO_PATH.match(path)
    return match.group("name") if match else None


def scopes_for(method: str, path: str, extra: Iterable[str] = ()) -> list[str]:
    """The scopes a request needs, merged per resource."""
    needed = list(extra)
    repository = repository_of(path)
    if repository:
        actions = "pull" if method.upper() in _READ_METHODS else "pull,push"
        needed.append(f"repository:{repository}:{actions}")
    return merge(needed)


def split(scope: str) -> tuple[str, str, list[str]]:
    """`type:name:actions`; the name may itself contain ':' (host:port), so cut at the first and last."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return kind, name, [a for a in actions.split(",") if a]


def merge(scopes: Iterable[str]) -> list[str]:
    """One scope per resource with the union of its actions, sorted so equal sets compare equal."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        kind, name, actions = split(scope)
        if not kind or not name:
            continue
        merged.setdefault((kind, name), set()).update(actions)
    return sorted(f"{kind}:{name}:{','.join(sorted(actions))}" for (kind, name), actions in merged.items())
