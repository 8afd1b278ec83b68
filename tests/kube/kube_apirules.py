"""What the API server checks and a JSON schema cannot say, as plain assertions over rendered objects.

kubernetes-validate (the official OpenAPI schemas) catches wrong types, unknown fields and missing
required ones, but it accepted a Job with `restartPolicy: Always` and a container named `Algo_1`
(docs/kubernetes.md, section 5). These rules are apiserver's own (pkg/apis/*/validation), written again
for the fields forklift sets; `problems` returns each broken rule as a line, so a test asserts `== []`
and the tests of this module show that each rule does fire.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def dns1123_label(s: object) -> bool:
    return isinstance(s, str) and len(s) <= 63 and _LABEL.fullmatch(s) is not None


def dns1035_label(s: object) -> bool:
    return isinstance(s, str) and len(s) <= 63 and _LABEL_1035.fullmatch(s) is not None


def dns1123_subdomain(s: object) -> bool:
    return isinstance(s, str) and len(s) <= 253 and _SUBDOMAIN.fullmatch(s) is not None


def label_key(s: object) -> bool:
    if not isinstance(s, str):
        return False
    prefix, slash, name = s.rpartition("/")
    return (not slash or dns1123_subdomain(prefix)) and len(name) <= 63 and _NAME_PART.fullmatch(name) is not None


def label_value(s: object) -> bool:
    return isinstance(s, str) and len(s) <= 63 and _LABEL_VALUE.fullmatch(s) is not None


def _labels(where: str, labels: Any) -> list[str]:
    if labels is None:
        return []
    found = [f"{where}: label key {k!r}" for k in labels if not label_key(k)]
    return found + [f"{where}: label value {k}={v!r}" for k, v in labels.items() if not label_value(v)]


def _quantity_milli(q: str) -> float:
    units = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", q).groups()
    return float(number) * units[unit]


def _pod(where: str, spec: dict, restart_policies: set[str]) -> list[str]:
    found = []
    if spec.get("restartPolicy", "Always") not in restart_policies:
        found.append(f"{where}: restartPolicy {spec.get('restartPolicy')!r} not in {sorted(restart_policies)}")
    volumes = {v["name"] for v in spec.get("volumes", [])}
    found += [f"{where}: volume name {v!r}" for v in volumes if not dns1123_label(v)]
    if "hostname" in spec and not dns1123_label(spec["hostname"]):
        found.append(f"{where}: hostname {spec['hostname']!r}")
    for secret in spec.get("imagePullSecrets", []):
        if not dns1123_subdomain(secret.get("name")):
            found.append(f"{where}: imagePullSecrets name {secret.get('name')!r}")
    names = [c["name"] for c in spec["containers"]]
    if len(set(names)) != len(names):
        found.append(f"{where}: duplicate container names")
    for c in spec["containers"]:
        here = f"{where}.containers[{c['name']}]"
        if not dns1123_label(c["name"]):
            found.append(f"{here}: container name is not a DNS-1123 label")
        mount_paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
        if len(set(mount_paths)) != len(mount_paths):
            found.append(f"{here}: a mountPath is used twice")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                found.append(f"{here}: volumeMount names volume {m['name']!r}, which the pod lacks")
            sub = m.get("subPath", "")
            if sub.startswith("/") or ".." in sub.split("/"):
                found.append(f"{here}: subPath {sub!r} must be relative without '..'")
        resources = c.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        for name, amount in requests.items():
            if name in limits and _quantity_milli(amount) > _quantity_milli(limits[name]):
                found.append(f"{here}: request {name} above its limit")
            if "/" in name and limits.get(name) != amount:  # extended resources: requests == limits
                found.append(f"{here}: extended resource {name} request differs from its limit")
        for port in c.get("ports", []):
            if not 1 <= port["containerPort"] <= 65535:
                found.append(f"{here}: containerPort {port['containerPort']}")
    return found


def _metadata(obj: dict, name_rule) -> list[str]:
    meta = obj["metadata"]
    found = [] if name_rule(meta.get("name")) else [f"{obj['kind']} name {meta.get('name')!r}"]
    if not dns1123_label(meta.get("namespace")):
        found.append(f"{obj['kind']} namespace {meta.get('namespace')!r}")
    return found + _labels(f"{obj['kind']}.metadata", meta.get("labels"))


def _selector_matches(where: str, selector: dict, labels: dict) -> list[str]:
    match = selector.get("matchLabels") or {}
    if not match:
        return [f"{where}: empty selector"]
    if any(labels.get(k) != v for k, v in match.items()):
        return [f"{where}: selector {match} does not match template labels {labels}"]
    return []


def dockerconfigjson(secret: dict) -> dict:
    """The decoded `.dockerconfigjson` of a dockerconfigjson Secret (raises if it does not decode)."""
    raw = base64.b64decode(secret["data"][".dockerconfigjson"], validate=True)
    return json.loads(raw)


def _secret(obj: dict) -> list[str]:
    found = _metadata(obj, dns1123_subdomain)
    if obj.get("type") != "kubernetes.io/dockerconfigjson":
        return found
    data = obj.get("data") or {}
    if set(data) != {".dockerconfigjson"}:
        return [*found, f"Secret data keys {sorted(data)}: must be exactly .dockerconfigjson"]
    try:
        config = dockerconfigjson(obj)
        auths = config["auths"]
        for registry, entry in auths.items():
            user, colon, _ = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
            if not colon or not user:
                found.append(f"Secret auths[{registry}].auth is not base64(user:password)")
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        found.append(f"Secret .dockerconfigjson does not decode to {{auths: ...}}: {type(exc).__name__}")
    return found


def problems(obj: dict) -> list[str]:
    """Every rule `obj` breaks that the API server would refuse it for (empty: none)."""
    kind = obj["kind"]
    if kind == "Job":
        template = obj["spec"]["template"]
        found = _metadata(obj, dns1123_label) + _labels("Job template", template["metadata"].get("labels"))
        return found + _pod("Job", template["spec"], {"Never", "OnFailure"})
    if kind == "Deployment":
        template = obj["spec"]["template"]
        found = _metadata(obj, dns1123_label) + _labels("Deployment template", template["metadata"].get("labels"))
        found += _selector_matches("Deployment", obj["spec"]["selector"], template["metadata"].get("labels") or {})
        return found + _pod("Deployment", template["spec"], {"Always"})
    if kind == "Service":
        found = _metadata(obj, dns1035_label) + _labels("Service selector", obj["spec"].get("selector"))
        return found + [f"Service port {p}" for p in obj["spec"]["ports"] if not 1 <= p["port"] <= 65535]
    if kind == "Secret":
        return _secret(obj)
    if kind == "NetworkPolicy":
        return _metadata(obj, dns1123_label) + _labels("NetworkPolicy podSelector",
                                                       obj["spec"]["podSelector"].get("matchLabels"))
    return [f"no rules for kind {kind!r}"]
