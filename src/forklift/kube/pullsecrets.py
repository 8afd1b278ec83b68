"""A registry's credentials as a `kubernetes.io/dockerconfigjson` Secret, for `imagePullSecrets`.

The kubelet reads `.dockerconfigjson` as docker's config.json: `{"auths": {<registry>: {"auth":
base64("<username>:<password>")}}}`; Docker Hub's key there is docker's own
"https://index.docker.io/v1/", whatever spelling of the Hub forklift pulled from. The password is in
that Secret and nowhere else: never in a pod spec, an env var, an exception or a log line; a Secret
shown to a person goes through `redacted`. A credential that expires (an ECR token lasts 12 hours)
is renewed by replacing the Secret's data, so the Secret is not made immutable.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

from kubernetes.client import V1ObjectMeta, V1Secret

from forklift.kube.errors import InvalidObject
from forklift.kube.labels import checked_labels
from forklift.kube.names import is_dns1123_subdomain
from forklift.kube.serialize import to_dict
from forklift.kube.settings import KubeSettings
from forklift.reference import DOCKER_HUB, InvalidReference, normalize_registry

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKERCONFIGJSON = ".dockerconfigjson"
SECRET_TYPE = "kubernetes.io/dockerconfigjson"
REDACTED = "<redacted>"
# Registry passwords are tokens of a few KiB at most (ECR's are about 2 KiB, a GCP JSON key about
# 2.3 KiB); a Secret holds at most 1 MiB.
MAX_CREDENTIAL_BYTES = 64 * 1024
_HOST = re.compile(r"(\[[0-9a-f:]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?")


def registry_key(registry: str) -> str:
    """The `auths` key for `registry` (a host[:port] as forklift names it)."""
    try:
        host = normalize_registry(registry)
    except InvalidReference:
        raise InvalidObject("a pull secret needs the registry's host[:port], and it was empty") from None
    if not _HOST.fullmatch(host):
        raise InvalidObject(f"registry {registry!r} is not a host[:port] such as 'registry.example.com:5000'")
    return DOCKER_HUB_KEY if host == DOCKER_HUB else host


def dockerconfigjson(registry: str, username: str, password: str) -> str:
    """The Secret's `.dockerconfigjson` value, base64 as a Secret's `data` holds it."""
    # The messages name neither value: either may be the secret (a token given as the username).
    if not username or not password:
        raise InvalidObject("a pull secret needs a registry username and password, and one was empty")
    if ":" in username:
        raise InvalidObject("a registry username cannot contain ':' (docker's auth field is username:password)")
    if len(username.encode()) + len(password.encode()) > MAX_CREDENTIAL_BYTES:
        raise InvalidObject(f"registry credentials longer than {MAX_CREDENTIAL_BYTES // 1024} KiB")
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry_key(registry): {"auth": auth}}}, separators=(",", ":"))
    return base64.b64encode(config.encode()).decode()


def pull_secret(name: str, registry: str, username: str, password: str, labels: dict[str, str],
                settings: KubeSettings) -> dict[str, Any]:
    """A `kubernetes.io/dockerconfigjson` Secret named `name` holding one registry's credentials."""
    if not is_dns1123_subdomain(name):
        raise InvalidObject(f"Secret name {name!r} is not a DNS-1123 subdomain (forklift.kube.names.object_name)")
    secret = V1Secret(
        api_version="v1", kind="Secret", type=SECRET_TYPE,
        metadata=V1ObjectMeta(name=name, namespace=settings.namespace, labels=checked_labels(labels)),
        data={DOCKERCONFIGJSON: dockerconfigjson(registry, username, password)})
    return to_dict(secret)


def redacted(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` with every value of every Secret's `data` and `stringData` (at any depth, as
    in a List) replaced by "<redacted>"."""
    copied = copy.deepcopy(obj)
    _redact(copied)
    return copied


def _redact(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _redact(item)
    elif isinstance(node, dict):
        if node.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if isinstance(node.get(key), dict):
                    node[key] = dict.fromkeys(node[key], REDACTED)
                elif key in node:
                    node[key] = REDACTED
        for value in node.values():
            _redact(value)
