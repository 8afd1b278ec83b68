"""The `[kubernetes]` table of `$FORKLIFT_HOME/config.toml` (every key optional; forklift.config's
SCHEMA holds their shapes and checks):

    runtime = "kubernetes"                     # top-level: forklift serve runs containers on Kubernetes
    [kubernetes]
    namespace = "forklift"                     # where every object goes (default "default")
    kubeconfig = "~/.kube/config"              # default: in-cluster config in a pod, else kubectl's default
    context = "prod"                           # a context of that kubeconfig (default: its current one)
    volume_claim = "forklift-home"             # the ReadWriteMany claim holding FORKLIFT_HOME (see forklift.kube)
    volume_subpath = "forklift"                # where FORKLIFT_HOME lies inside that claim (default: its root)
    service_account = "forklift-workloads"     # the pods' service account (default: the namespace's default)
    image_pull_policy = "IfNotPresent"
    gpu_resource = "nvidia.com/gpu"
    service_domain = "svc.cluster.local"
    secret_refresh_seconds = 21600             # a pull Secret's credentials resolved again this often until
                                               # its pod has pulled (60 to 86400; an ECR token lasts 12 h)
    [kubernetes.node_selector]
    "node.kubernetes.io/instance-type" = "g5.xlarge"

`forklift serve --namespace/--kubeconfig/--context` override the first three (`with_overrides`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, cast

from forklift.config import SCHEMA, Key, Settings, read_config_file
from forklift.kube.errors import InvalidSetting

Runtime = Literal["runc", "kubernetes"]


def _keys() -> dict[str, Key]:
    table = SCHEMA["kubernetes"]
    assert isinstance(table, dict)
    return table


@dataclass(frozen=True)
class KubeSettings:
    namespace: str = "default"
    kubeconfig: str | None = None  # None: in-cluster config in a pod, else the client's default kubeconfig
    context: str | None = None
    volume_claim: str | None = None
    volume_subpath: str = ""
    service_account: str | None = None
    image_pull_policy: str = "IfNotPresent"
    gpu_resource: str = "nvidia.com/gpu"
    # Left out of the hash (a dict has none), still compared: the settings stay usable as a cache key.
    node_selector: dict[str, str] = field(default_factory=dict, hash=False)
    service_domain: str = "svc.cluster.local"
    secret_refresh_seconds: float = 6 * 3600

    def __post_init__(self) -> None:
        # One set of rules for config.toml, the flags and settings built in code: config.SCHEMA's.
        keys = _keys()
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and (fix := keys[item.name].check(value)) is not None:
                raise InvalidSetting(f"[kubernetes] {item.name} = {_shown(value)}: {fix}")
        object.__setattr__(self, "node_selector", dict(self.node_selector))  # not the caller's dict

    def with_overrides(self, namespace: str | None = None, kubeconfig: str | None = None,
                       context: str | None = None) -> KubeSettings:
        """These settings with `forklift serve`'s --namespace, --kubeconfig and --context applied."""
        keys = _keys()
        given = {"namespace": namespace, "kubeconfig": kubeconfig, "context": context}
        changes: dict[str, Any] = {}
        for name, value in given.items():
            if value is None:
                continue
            if (fix := keys[name].check(value)) is not None:
                raise InvalidSetting(f"--{name} {_shown(value)}: {fix}")
            changes[name] = os.path.expanduser(value) if name == "kubeconfig" else value
        return replace(self, **changes)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def kube_settings(settings: Settings) -> KubeSettings:
    """The `[kubernetes]` table of config.toml (already checked against forklift.config.SCHEMA)."""
    _, data = read_config_file(settings.home)
    section = dict(data.get("kubernetes", {}))
    if isinstance(section.get("kubeconfig"), str):
        section["kubeconfig"] = os.path.expanduser(section["kubeconfig"])
    return KubeSettings(**section)


def configured_runtime(settings: Settings) -> Runtime:
    """config.toml's top-level `runtime`: "runc" (the default) or "kubernetes"."""
    _, data = read_config_file(settings.home)
    return cast(Runtime, data.get("runtime", "runc"))
