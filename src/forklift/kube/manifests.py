"""Objects as one multi-document YAML manifest, to show a person or hand to `kubectl apply -f`."""

from __future__ import annotations

from typing import Any

import yaml

from forklift.kube.pullsecrets import redacted

_FIRST = ("apiVersion", "kind", "metadata")


def _ordered(node: Any, top: bool = False) -> Any:
    """apiVersion, kind, metadata first at the top, every other mapping's keys sorted, as kubectl writes."""
    if isinstance(node, list):
        return [_ordered(item) for item in node]
    if not isinstance(node, dict):
        return node
    keys = sorted(node, key=str)
    if top:
        keys = [k for k in _FIRST if k in node] + [k for k in keys if k not in _FIRST]
    return {key: _ordered(node[key]) for key in keys}


def to_yaml(objs: list[dict[str, Any]], *, redact: bool = True) -> str:
    """`objs` as YAML documents separated by `---`. Secrets' values are "<redacted>" unless
    `redact=False`: a manifest is for reading, and the credentials stay in the cluster."""
    docs = [_ordered(redacted(obj) if redact else obj, top=True) for obj in objs]
    text: str = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
    return text
