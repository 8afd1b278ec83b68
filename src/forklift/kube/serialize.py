"""`kubernetes.client` models as the plain JSON-ready dicts the API takes (camelCase, no None)."""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient, Configuration

# Serializing needs no cluster: a client with a blank configuration, never the process's default one
# (which the backend fills with credentials).
_CLIENT = ApiClient(Configuration())


def to_dict(model: Any) -> dict[str, Any]:
    data = _CLIENT.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]  # the client leaves it untyped
    assert isinstance(data, dict)
    return data
