"""The Job, Deployment, Service and NetworkPolicies forklift renders: valid against the official
schemas (kubernetes-validate, strict, the newest version it ships), valid by the API server's own rules
that a schema cannot say (kube_apirules), and shaped as the design says (restart rules, confinement,
the claim's sub-paths)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from kube_apirules import problems

from forklift.errors import ForkliftError
from forklift.kube.errors import InvalidObject, KubeError, NotPinned
from forklift.kube.names import GENERATION, MANAGED_BY, object_name, training_labels, variant_labels
from forklift.kube.objects import (
    SERVING_PORT,
    ClaimMount,
    HealthChecks,
    PodPlan,
    deployment,
    network_policy,
    service,
    service_host,
    training_job,
)
from forklift.kube.settings import KubeSettings

# The newest Kubernetes version whose schemas the installed kubernetes-validate ships.
K8S_VERSION = kubernetes_validate.latest_version()
DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"registry.example.com:5000/team/algo@{DIGEST}"
SETTINGS = KubeSettings(namespace="forklift", volume_claim="forklift-home", volume_subpath="homes/fk",
                        service_account="forklift-workloads", image_pull_policy="Always",
                        node_selector={"node.kubernetes.io/instance-type": "g5.xlarge"})
BARE = KubeSettings()  # no claim, the default namespace
JOB = "My-Training-Job"


def job_mounts(job: str, channels: tuple[str, ...]) -> tuple[ClaimMount, ...]:
    base = f"jobs/{job}"
    mounts = [ClaimMount(f"{base}/input/config", "/opt/ml/input/config", read_only=True),
              ClaimMount(f"{base}/model", "/opt/ml/model"), ClaimMount(f"{base}/output", "/opt/ml/output"),
              *(ClaimMount(f"{base}/input/data/{c}", f"/opt/ml/input/data/{c}", read_only=True) for c in channels),
              ClaimMount(f"{base}/input", "/opt/ml/input")]  # a parent last: the renderer orders them
    return tuple(mounts)


MINIMAL_TRAINING = PodPlan(image=IMAGE, args=["train"], labels=training_labels(JOB), hostname="algo-1")
FULL_TRAINING = PodPlan(
    image=IMAGE, command=["python3", "/opt/ml/code/train.py"], args=["--epochs", "3"],
    env={"SM_CHANNEL_TRAIN": "/opt/ml/input/data/train", "TRAINING_JOB_NAME": JOB}, cpus=8,
    memory_bytes=61 * 2**30, gpus=4, mounts=job_mounts(JOB, ("train", "validation")), pull_secret="ps-my-job",
    labels=training_labels(JOB), hostname="algo-1", termination_grace_seconds=120)
CPU_TRAINING = PodPlan(image=IMAGE, args=["train"], cpus=0.5, memory_bytes=1_500_000_000,
                       mounts=job_mounts(JOB, ()), labels=training_labels(JOB), hostname="algo-1")
VARIANT = variant_labels("My-Endpoint", "AllTraffic", 2)
SERVING = PodPlan(image=IMAGE, args=["serve"], cpus=2, memory_bytes=4 * 2**30, gpus=1, port=SERVING_PORT,
                  mounts=(ClaimMount("endpoints/My-Endpoint/AllTraffic/model", "/opt/ml/model", read_only=True),),
                  pull_secret="ps-ep-alltraffic", labels=VARIANT, env={"SAGEMAKER_BIND_TO_PORT": "8080"})
MINIMAL_SERVING = PodPlan(image=IMAGE, labels=VARIANT)

RENDERED = {
    "training, minimal": lambda: training_job(object_name("tj", JOB), MINIMAL_TRAINING, BARE, None),
    "training, GPUs, channels, entrypoint": lambda: training_job(object_name("tj", JOB), FULL_TRAINING, SETTINGS,
                                                                 86400),
    "training, fractional CPU": lambda: training_job("tj-cpu", CPU_TRAINING, SETTINGS, 60),
    "serving": lambda: deployment("ep-my-endpoint-alltraffic", SERVING, 3, SETTINGS),
    "serving, minimal": lambda: deployment("ep-minimal", MINIMAL_SERVING, 0, BARE,
                                           health=HealthChecks(startup_timeout_seconds=5, period_seconds=10)),
    "service": lambda: service("ep-my-endpoint-alltraffic", VARIANT, SETTINGS),
    "network policy, isolated": lambda: network_policy("np-my-job", training_labels(JOB), SETTINGS, isolated=True),
    "network policy, VPC": lambda: network_policy("np-my-job", training_labels(JOB), SETTINGS, isolated=False),
    "network policy, serving": lambda: network_policy("np-ep", VARIANT, SETTINGS, isolated=True,
                                                      serving_port=8080, serving_from={"app": "forklift"}),
    "network policy, serving from anywhere": lambda: network_policy("np-ep", VARIANT, SETTINGS, isolated=False,
                                                                    serving_port=8080),
}


@pytest.mark.parametrize("case", RENDERED)
def test_every_object_is_valid_against_the_official_schema(case):
    kubernetes_validate.validate(RENDERED[case](), K8S_VERSION, strict=True)  # raises ValidationError if not


@pytest.mark.parametrize("case", RENDERED)
def test_every_object_keeps_the_rules_the_api_server_adds(case):
    obj = RENDERED[case]()
    assert problems(obj) == []
    assert obj["metadata"]["labels"][MANAGED_BY] == "forklift"


def test_the_schema_check_can_fail():
    """kubernetes-validate refuses what a schema can say, so a pass above means something."""
    job = RENDERED["training, GPUs, channels, entrypoint"]()
    wrong_type = copy.deepcopy(job)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    typo = copy.deepcopy(job)
    typo["spec"]["backofLimit"] = typo["spec"].pop("backoffLimit")
    no_containers = copy.deepcopy(job)
    del no_containers["spec"]["template"]["spec"]["containers"]
    for broken, says in ((wrong_type, "is not of type 'string'"), (typo, "Additional properties are not allowed"),
                         (no_containers, "'containers' is a required property")):
        with pytest.raises(kubernetes_validate.ValidationError, match=says):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_api_server_rules_can_fail_where_the_schema_passes():
    job = RENDERED["training, GPUs, channels, entrypoint"]()
    restarting = copy.deepcopy(job)
    restarting["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    badly_named = copy.deepcopy(job)
    badly_named["spec"]["template"]["spec"]["containers"][0]["name"] = "Algo_1"
    escaping = copy.deepcopy(job)
    escaping["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = "homes/../../etc"
    for broken, says in ((restarting, "restartPolicy 'Always'"), (badly_named, "not a DNS-1123 label"),
                         (escaping, "must be relative without '..'")):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)  # the schema lets each through
        assert any(says in p for p in problems(broken)), problems(broken)
    serving = RENDERED["serving"]()
    serving["spec"]["selector"]["matchLabels"][GENERATION] = "1"
    assert any("does not match template labels" in p for p in problems(serving))


def pod_of(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def test_a_training_job_runs_once_confined_and_is_deleted_by_forklift():
    job = RENDERED["training, GPUs, channels, entrypoint"]()
    assert (job["apiVersion"], job["kind"], job["metadata"]["namespace"]) == ("batch/v1", "Job", "forklift")
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 86400
    assert "ttlSecondsAfterFinished" not in spec
    assert spec["template"]["metadata"]["labels"] == job["metadata"]["labels"] == {
        "forklift.io/training-job": JOB, MANAGED_BY: "forklift"}
    pod = pod_of(job)
    assert pod["restartPolicy"] == "Never" and pod["hostname"] == "algo-1"
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert pod["serviceAccountName"] == "forklift-workloads"
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g5.xlarge"}
    assert pod["imagePullSecrets"] == [{"name": "ps-my-job"}]
    assert pod["terminationGracePeriodSeconds"] == 120
    (main,) = pod["containers"]
    assert main["image"] == IMAGE and main["imagePullPolicy"] == "Always"
    assert main["command"] == ["python3", "/opt/ml/code/train.py"] and main["args"] == ["--epochs", "3"]
    assert main["env"] == [{"name": "SM_CHANNEL_TRAIN", "value": "/opt/ml/input/data/train"},
                           {"name": "TRAINING_JOB_NAME", "value": JOB}]
    assert main["securityContext"] == {"allowPrivilegeEscalation": False, "privileged": False,
                                       "capabilities": {"drop": ["NET_RAW"]},
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert main["resources"] == {"requests": {"cpu": "8", "memory": "61Gi"},
                                 "limits": {"cpu": "8", "memory": "61Gi", "nvidia.com/gpu": "4"}}


def test_a_job_without_an_entrypoint_gpus_or_data_says_none():
    job = RENDERED["training, minimal"]()
    assert "activeDeadlineSeconds" not in job["spec"] and job["metadata"]["namespace"] == "default"
    pod = pod_of(job)
    (main,) = pod["containers"]
    assert "command" not in main and main["args"] == ["train"]
    assert "resources" not in main and "volumeMounts" not in main and "volumes" not in pod
    for absent in ("serviceAccountName", "nodeSelector", "imagePullSecrets", "terminationGracePeriodSeconds"):
        assert absent not in pod


def test_resources_are_quantities_and_the_gpu_a_limit_only():
    pod = pod_of(RENDERED["training, fractional CPU"]())
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "500m", "memory": "1500000000"},
                                                 "limits": {"cpu": "500m", "memory": "1500000000"}}
    gpus_only = PodPlan(image=IMAGE, gpus=2, labels=training_labels(JOB))
    resources = pod_of(training_job("tj-g", gpus_only, KubeSettings(gpu_resource="amd.com/gpu"), None))
    assert resources["containers"][0]["resources"] == {"limits": {"amd.com/gpu": "2"}}


def test_the_claims_sub_paths_lie_under_forklift_home_parents_first():
    pod = pod_of(RENDERED["training, GPUs, channels, entrypoint"]())
    assert pod["volumes"] == [{"name": "forklift-home", "persistentVolumeClaim": {"claimName": "forklift-home"}}]
    mounts = [(m["mountPath"], m["subPath"], m.get("readOnly", False)) for m in pod["containers"][0]["volumeMounts"]]
    home = f"homes/fk/jobs/{JOB}"
    assert mounts == [
        ("/opt/ml/input", f"{home}/input", False), ("/opt/ml/model", f"{home}/model", False),
        ("/opt/ml/output", f"{home}/output", False), ("/opt/ml/input/config", f"{home}/input/config", True),
        ("/opt/ml/input/data/train", f"{home}/input/data/train", True),
        ("/opt/ml/input/data/validation", f"{home}/input/data/validation", True)]
    at_root = pod_of(training_job("tj-r", CPU_TRAINING, KubeSettings(volume_claim="c"), None))
    assert at_root["containers"][0]["volumeMounts"][0]["subPath"] == f"jobs/{JOB}/input"


def test_a_variant_is_a_deployment_probed_on_ping_behind_a_service():
    obj = RENDERED["serving"]()
    assert (obj["apiVersion"], obj["kind"], obj["spec"]["replicas"]) == ("apps/v1", "Deployment", 3)
    template_labels = obj["spec"]["template"]["metadata"]["labels"]
    assert obj["spec"]["selector"] == {"matchLabels": template_labels} and template_labels == VARIANT
    pod = pod_of(obj)
    assert pod["restartPolicy"] == "Always" and pod["automountServiceAccountToken"] is False
    (main,) = pod["containers"]
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    ping = {"httpGet": {"path": "/ping", "port": 8080}, "periodSeconds": 2, "timeoutSeconds": 2}
    assert main["readinessProbe"] == main["livenessProbe"] == {**ping, "failureThreshold": 3}
    assert main["startupProbe"] == {**ping, "failureThreshold": 120}  # 240 s of /ping before it counts
    assert main["volumeMounts"] == [{"name": "forklift-home", "mountPath": "/opt/ml/model", "readOnly": True,
                                     "subPath": "homes/fk/endpoints/My-Endpoint/AllTraffic/model"}]
    minimal = pod_of(RENDERED["serving, minimal"]())["containers"][0]
    assert minimal["ports"][0]["containerPort"] == 8080 and minimal["startupProbe"]["failureThreshold"] == 1

    svc = RENDERED["service"]()
    assert svc["spec"] == {"type": "ClusterIP", "selector": VARIANT,
                           "ports": [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": 8080}]}
    assert svc["metadata"]["labels"] == VARIANT
    assert service_host("ep-x", SETTINGS) == "ep-x.forklift.svc.cluster.local"


def test_network_isolation_leaves_only_the_peers_and_a_vpc_opens_egress():
    peers = [{"podSelector": {"matchLabels": training_labels(JOB)}}]
    isolated = RENDERED["network policy, isolated"]()["spec"]
    assert isolated == {"podSelector": {"matchLabels": training_labels(JOB)}, "policyTypes": ["Ingress", "Egress"],
                        "ingress": [{"from": peers}], "egress": [{"to": peers}]}
    vpc = RENDERED["network policy, VPC"]()["spec"]
    assert vpc["egress"] == [{}] and vpc["ingress"] == [{"from": peers}]
    serving = RENDERED["network policy, serving"]()["spec"]
    assert serving["ingress"][1] == {"from": [{"podSelector": {"matchLabels": {"app": "forklift",
                                                                               MANAGED_BY: "forklift"}}}],
                                     "ports": [{"protocol": "TCP", "port": 8080}]}
    anywhere = RENDERED["network policy, serving from anywhere"]()["spec"]
    assert anywhere["ingress"][1] == {"ports": [{"protocol": "TCP", "port": 8080}]}


@pytest.mark.parametrize("sub_path", ["..", "jobs/../../etc", "jobs/x/..", "/etc/shadow", "", ".", "./", "a\0b"])
def test_a_mount_never_leaves_forklift_home_nor_shows_all_of_it(sub_path):
    plan = PodPlan(image=IMAGE, mounts=(ClaimMount(sub_path, "/opt/ml/input"),), labels=training_labels(JOB))
    with pytest.raises(InvalidObject, match="FORKLIFT_HOME"):
        training_job("tj-x", plan, SETTINGS, None)


@pytest.mark.parametrize("mount_path", ["opt/ml/input", "/opt/ml/../etc", "/", "/opt/ml/input/"])
def test_a_mount_path_is_absolute_and_normalized(mount_path):
    plan = PodPlan(image=IMAGE, mounts=(ClaimMount("jobs/x/input", mount_path),), labels=training_labels(JOB))
    with pytest.raises(InvalidObject, match="mount_path"):
        training_job("tj-x", plan, SETTINGS, None)


def test_a_mount_path_is_used_once():
    twice = (ClaimMount("jobs/x/a", "/opt/ml/input"), ClaimMount("jobs/x/b", "/opt/ml/input"))
    with pytest.raises(InvalidObject, match="mounted twice"):
        training_job("tj-x", PodPlan(image=IMAGE, mounts=twice, labels=training_labels(JOB)), SETTINGS, None)


def test_mounts_without_a_claim_name_the_setting():
    with pytest.raises(InvalidObject) as caught:
        training_job("tj-x", CPU_TRAINING, BARE, None)
    assert "volume_claim" in str(caught.value) and "[kubernetes]" in str(caught.value)


@pytest.mark.parametrize("image", [
    "registry.example.com/team/algo:latest", "registry.example.com/team/algo", "algo",
    f"registry.example.com/team/algo:v1@{DIGEST}", "registry.example.com/team/algo@sha512:" + "a" * 128,
    "registry.example.com/team/algo@sha256:abc", "Registry.Example.com/Team/algo@" + DIGEST, "", "http://x/y",
])
def test_only_a_digest_pinned_image_is_rendered(image):
    with pytest.raises(NotPinned) as caught:
        training_job("tj-x", PodPlan(image=image, labels=training_labels(JOB)), BARE, None)
    assert repr(image) in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, KubeError)
    assert isinstance(caught.value, ForkliftError)


def test_docker_hub_images_are_spelled_as_the_kubelet_matches_them():
    for spelling in (f"registry-1.docker.io/library/python@{DIGEST}", f"index.docker.io/library/python@{DIGEST}",
                     f"python@{DIGEST}", f"docker.io/library/python@{DIGEST}"):
        plan = PodPlan(image=spelling, labels=training_labels(JOB))
        assert pod_of(training_job("tj-x", plan, BARE, None))["containers"][0]["image"] == (
            f"docker.io/library/python@{DIGEST}")


@pytest.mark.parametrize(("render", "says"), [
    (lambda: training_job("My-Job", MINIMAL_TRAINING, BARE, None), "Job name 'My-Job' is not a DNS-1123 label"),
    (lambda: training_job("t" * 64, MINIMAL_TRAINING, BARE, None), "is not a DNS-1123 label"),
    (lambda: training_job("tj-x", MINIMAL_TRAINING, BARE, 0), "deadline_seconds = 0"),
    (lambda: service("1ep", VARIANT, BARE), "Service name '1ep' is not a DNS-1035 label"),
    (lambda: service("ep", {}, BARE), "selector must name its variant's pods"),
    (lambda: deployment("ep", PodPlan(image=IMAGE), 1, BARE), "labels naming their variant"),
    (lambda: deployment("ep", MINIMAL_SERVING, -1, BARE), "replicas = -1"),
    (lambda: deployment("ep", MINIMAL_SERVING, 1, BARE, health=HealthChecks(period_seconds=0)), "period_seconds"),
    (lambda: network_policy("np", {}, BARE, isolated=True), "selector must name one job's or variant's pods"),
    (lambda: network_policy("np", VARIANT, BARE, isolated=True, serving_port=0), "serving_port 0"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, labels={"forklift.io/training-job": "a b"}), BARE, None),
     "label forklift.io/training-job='a b'"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, labels={"Bad Key": "x"}), BARE, None), "label key 'Bad Key'"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, labels={MANAGED_BY: "me"}), BARE, None), "forklift's own"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, env={"1X": "v"}), BARE, None), "environment variable name"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, cpus=0.0001), BARE, None), "at least 0.001 CPU"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, cpus=float("nan")), BARE, None), "at least 0.001 CPU"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, memory_bytes=0), BARE, None), "memory_bytes = 0"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, gpus=-1), BARE, None), "gpus = -1"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, hostname="Algo_1"), BARE, None), "hostname 'Algo_1'"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, pull_secret="Secret"), BARE, None), "pull_secret 'Secret'"),
    (lambda: training_job("tj-x", PodPlan(image=IMAGE, port=70000), BARE, None), "port 70000"),
])
def test_what_the_api_server_would_refuse_is_refused_here_with_the_rule(render, says):
    with pytest.raises(InvalidObject) as caught:
        render()
    assert says in str(caught.value)
