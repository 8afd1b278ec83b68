"""deploy/kubernetes/forklift.yaml, the documented deployment of forklift itself: every document valid
against Kubernetes' own schemas (kubernetes-validate, strict, the newest version it ships), its Role
exactly the calls forklift makes (`forklift.kube.cluster.PERMISSIONS`), and the Deployment what the
README says it is."""

from __future__ import annotations

import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kube_apirules import problems
from kubernetes.client import ApiClient, Configuration

from forklift.kube.cluster import PERMISSIONS, RESOURCES, Cluster
from forklift.kube.settings import KubeSettings

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "forklift.yaml"
DOCS = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc is not None]
BY_KIND = {doc["kind"]: doc for doc in DOCS}


def test_the_manifest_holds_one_of_each_object_it_documents():
    assert sorted(doc["kind"] for doc in DOCS) == sorted(
        ["ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim", "Secret", "ConfigMap", "Deployment",
         "Service"])
    assert {doc["metadata"]["namespace"] for doc in DOCS} == {"forklift"}


@pytest.mark.parametrize("doc", DOCS, ids=[doc["kind"] for doc in DOCS])
def test_every_document_is_valid_for_kubernetes(doc):
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    if doc["kind"] in ("Deployment", "Service"):
        assert problems(doc) == []


def test_the_role_grants_exactly_what_forklift_asks_for():
    granted = {(group, resource): sorted(rule["verbs"]) for rule in BY_KIND["Role"]["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {(group, resource): sorted(verbs) for group, resource, verbs in PERMISSIONS}
    binding = BY_KIND["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "forklift"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "forklift", "namespace": "forklift"}]


def test_every_kind_forklift_makes_is_covered_and_a_call_outside_the_role_is_refused():
    assert {(group, resource) for group, resource in RESOURCES.values()} <= {(g, r) for g, r, _ in PERMISSIONS}
    cluster = Cluster(KubeSettings(), api=ApiClient(Configuration()))  # refused before any request is made
    with pytest.raises(LookupError, match=r"does not get secrets .*PERMISSIONS"):
        cluster.read("Secret", "any")
    with pytest.raises(LookupError, match="does not watch secrets"):
        cluster.watchable("Secret")
    assert callable(cluster.watchable("Job")) and callable(cluster.watchable("Pod"))


def test_the_deployment_runs_one_kubernetes_server_on_the_shared_claim_with_the_database_from_the_secret():
    deployment = BY_KIND["Deployment"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == BY_KIND["ServiceAccount"]["metadata"]["name"]
    (container,) = pod["containers"]
    assert "exec forklift serve --host 0.0.0.0 --runtime kubernetes" in " ".join(container["command"] +
                                                                             container["args"])
    env = {e["name"]: e for e in container["env"]}
    home = env["FORKLIFT_HOME"]["value"]
    secret = BY_KIND["Secret"]
    assert env["FORKLIFT_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"], "key": "FORKLIFT_DATABASE_URL"}
    assert secret["stringData"]["FORKLIFT_DATABASE_URL"].startswith("postgresql://")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = BY_KIND["PersistentVolumeClaim"]
    assert volumes[mounts[home]["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert container["readinessProbe"]["tcpSocket"]["port"] == 9400
    (port,) = BY_KIND["Service"]["spec"]["ports"]
    assert port["port"] == 9400 and port["targetPort"] == 9400
    assert BY_KIND["Service"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_servers_config_names_the_claim_it_mounts_and_its_namespace():
    config = BY_KIND["ConfigMap"]
    pod = BY_KIND["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    home = {e["name"]: e for e in container["env"]}["FORKLIFT_HOME"]["value"]
    mounted = {m["mountPath"]: m for m in container["volumeMounts"]}[f"{home}/config.toml"]
    volume = {v["name"]: v for v in pod["volumes"]}[mounted["name"]]
    assert volume["configMap"]["name"] == config["metadata"]["name"] and mounted["subPath"] == "config.toml"
    settings = tomllib.loads(config["data"]["config.toml"])
    kube = KubeSettings(**settings["kubernetes"])  # checked as config.toml's [kubernetes] is
    assert settings["runtime"] == "kubernetes"
    assert kube.volume_claim == BY_KIND["PersistentVolumeClaim"]["metadata"]["name"]
    assert kube.namespace == BY_KIND["Deployment"]["metadata"]["namespace"] and kube.volume_subpath == ""
