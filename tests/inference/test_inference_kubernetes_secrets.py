"""An endpoint variant's pull Secret on the Kubernetes runtime is renewed from its credentials chain
for as long as its Deployment lives (its pods pull whenever they are scheduled), and goes with it.
The launcher runs in this process against the Kubernetes API STAND-IN (fixtures.kubeemulator), with
a refresh interval of a fraction of a second (config.toml's minimum is 60 s); the credentials come
from a real docker config.json that the test rewrites, as `docker login` would.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from fixtures import secretscan
from fixtures.kubeemulator import CLAIM, NAMESPACE
from forklift.config import Settings
from forklift.control.inference import instances as inst
from forklift.control.inference.store import InferenceStore
from forklift.control.kubernetes.endpoints import KubernetesInstanceLauncher
from forklift.control.kubernetes.pullrefresh import PullSource
from forklift.kube.cluster import Cluster
from forklift.kube.names import MANAGED_BY, MANAGED_BY_VALUE
from forklift.kube.settings import KubeSettings
from forklift.kube.watch import ObjectWatch

REGISTRY = "registry.example.com:5000"
IMAGE = f"{REGISTRY}/team/model:1"


def docker_login(directory: Path, password: str) -> None:
    secretscan.register("a registry token in a docker config", password, user="deployer")
    auth = base64.b64encode(f"deployer:{password}".encode()).decode()
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": {REGISTRY: {"auth": auth}}}))
    secretscan.register_input(directory / "config.json")


def secret_password(emulator, name: str) -> str | None:
    for secret in emulator.objects_named("secrets", name):
        config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
        return base64.b64decode(config["auths"][REGISTRY]["auth"]).decode().split(":", 1)[1]
    return None


def eventually(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.1)


def test_a_variants_pull_secret_is_renewed_while_its_deployment_lives(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    docker_login(tmp_path / "docker", "first-token-a1")
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    monkeypatch.delenv("FORKLIFT_DATABASE_URL", raising=False)
    kube = KubeSettings(namespace=NAMESPACE, volume_claim=CLAIM)
    cluster = Cluster(kube, api=emulator.api())
    watch = ObjectWatch(cluster, ("Deployment", "Service", "Pod"), {MANAGED_BY: MANAGED_BY_VALUE})
    watch.start()
    launcher = KubernetesInstanceLauncher(settings, kube, cluster, watch, InferenceStore(settings.database_url),
                                          refresh_seconds=0.2)
    try:
        model_dir = settings.home / "endpoints" / "renewing" / "AllTraffic-g1" / "model"
        model_dir.mkdir(parents=True)
        prepared = inst.PreparedVariant("AllTraffic", "model-a", {"Image": IMAGE}, None, {}, model_dir, None,
                                        {"ResolvedImage": f"{REGISTRY}/team/model@sha256:{'a' * 64}"},
                                        pull_credentials=("deployer", "first-token-a1"))
        launcher._sources[("renewing", "AllTraffic", 1)] = PullSource(IMAGE)  # what prepare() records
        slot = launcher.start("renewing", prepared, 1)
        name = slot.of.name
        assert secret_password(emulator, name) == "first-token-a1"

        docker_login(tmp_path / "docker", "second-token-b2")  # the token was renewed, as ECR's are
        eventually(lambda: secret_password(emulator, name) == "second-token-b2")

        launcher.stop("renewing", slot)  # the last slot: every object goes, and the renewing stops
        eventually(lambda: not emulator.objects_named("secrets", name))
        docker_login(tmp_path / "docker", "third-token-c3")
        time.sleep(0.6)
        assert not emulator.objects_named("secrets", name)
    finally:
        launcher.close()
        watch.close()
