"""Endpoints on the Kubernetes runtime: a real `forklift serve --runtime kubernetes`, driven by boto3,
against a Kubernetes API STAND-IN (kmock's emulator; a kubelet stand-in sets each Deployment's ready
replicas and plays its Service with a model server on a loopback address: see fixtures.kubeemulator
for what that proves and what it does not) and a real TLS registry whose credentials come from a
provider function.
"""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from inference_support import (
    CONFIG_TOML,
    calling_continuously,
    create_config,
    create_model,
    prepare_home,
    unique,
    wait_status,
)

from fixtures.kubeemulator import CLAIM, NAMESPACE, Kubelet
from forklift.kube.names import ENDPOINT, GENERATION


@pytest.fixture(scope="module")
def kube_server(tmp_path_factory, pki, basic_registry, inference_image, emulator):
    home = tmp_path_factory.mktemp("kube-inference-home")
    running = prepare_home(home, pki, basic_registry)
    (home / "config.toml").write_text(f'runtime = "kubernetes"\n{CONFIG_TOML}[kubernetes]\nnamespace = "{NAMESPACE}"\n'
                                      f'volume_claim = "{CLAIM}"\n')
    running.serve_args = ("--kubeconfig", str(emulator.kubeconfig(home / "kubeconfig")))
    running.start()
    kubelet = Kubelet(emulator, home).start()
    running.kubelet = kubelet  # type: ignore[attr-defined]
    yield running
    kubelet.stop()
    running.stop()


def of_endpoint(objs: list[dict], endpoint: str) -> list[dict]:
    return [o for o in objs if o["metadata"].get("labels", {}).get(ENDPOINT) == endpoint]


def test_an_endpoint_is_a_deployment_behind_a_service_and_invocations_go_through_it(
        kube_server, emulator, inference_image, basic_registry):
    sm, runtime = kube_server.client("sagemaker"), kube_server.client("sagemaker-runtime")
    model = create_model(sm, kube_server, inference_image, version="v1")
    name = unique("kube-ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("AllTraffic", model, 2, 1.0)]))
    endpoint = wait_status(sm, name)
    assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")

    (deployment,) = of_endpoint(emulator.objects("deployments"), name)
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "@sha256:" in container["image"] and container["args"] == ["serve"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ping", "port": 8080}
    assert "livenessProbe" in container
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()
    (secret,) = of_endpoint(emulator.objects("secrets"), name)
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    assert base64.b64decode(auths[basic_registry.address]["auth"]).decode() == \
        f"{basic_registry.username}:{basic_registry.password}"
    assert basic_registry.password not in json.dumps(deployment)
    # the model's VpcConfig: nothing reaches its pods but on 8080, where InvokeEndpoint arrives
    (policy,) = of_endpoint(emulator.objects("networkpolicies"), name)
    assert {"protocol": "TCP", "port": 8080} in [p for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])]

    answer = runtime.invoke_endpoint(EndpointName=name, Body=b'[[1, 2]]', ContentType="application/json")
    assert json.loads(answer["Body"].read())["version"] == "v1"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    (service,) = of_endpoint(emulator.objects("services"), name)
    assert kube_server.kubelet.model_servers[service["metadata"]["name"]].served == 1

    # forklift k8s render prints the same objects, the Secret's data redacted
    shown = kube_server.forklift("k8s", "render", "--endpoint", name)
    assert shown.returncode == 0, shown.stderr
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(shown.stdout)}
    assert rendered[("Deployment", deployment["metadata"]["name"])]["spec"]["template"] == \
        deployment["spec"]["template"]
    assert rendered[("Secret", secret["metadata"]["name"])]["data"] == {".dockerconfigjson": "<redacted>"}
    assert basic_registry.password not in shown.stdout

    # each pod's log is a stream of the endpoint's log group, as each container's is on runc
    logs = kube_server.client("logs")
    group = f"/aws/sagemaker/Endpoints/{name}"

    def pod_lines() -> list[str]:
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        return [e["message"] for s in streams if s["logStreamName"].startswith("AllTraffic/")
                for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]]
    wait_until(lambda: len([line for line in pod_lines() if "listening on 8080" in line]) == 2)

    # UpdateEndpointWeightsAndCapacities scales the Deployment
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 3}])
    wait_status(sm, name, until=("InService",))
    wait_until(lambda: of_endpoint(emulator.objects("deployments"), name)[0]["spec"]["replicas"] == 3)

    # UpdateEndpoint: a new generation's Deployment serves once ready, then the old one is gone; no
    # request fails meanwhile
    model2 = create_model(sm, kube_server, inference_image, version="v2")
    with calling_continuously(runtime, name) as (answers, errors):
        sm.update_endpoint(EndpointName=name,
                           EndpointConfigName=create_config(sm, [("AllTraffic", model2, 1, 1.0)]))
        wait_until(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService" and
                   [d["metadata"]["labels"][GENERATION]
                    for d in of_endpoint(emulator.objects("deployments"), name)] == ["2"])
        wait_until(lambda: answers and answers[-1]["version"] == "v2")
    assert errors == []
    assert {a["version"] for a in answers} <= {"v1", "v2"} and answers[0]["version"] == "v1"

    sm.delete_endpoint(EndpointName=name)
    wait_until(lambda: not any(of_endpoint(emulator.objects(kind), name)
                               for kind in ("deployments", "services", "secrets", "networkpolicies")))


def test_a_variant_the_cluster_cannot_pull_fails_the_endpoint_with_the_kubelets_message(
        kube_server, emulator, inference_image):
    kube_server.kubelet.serving = lambda deployment: ("ImagePullBackOff", "Back-off pulling image: 403 Forbidden")
    try:
        sm = kube_server.client("sagemaker")
        model = create_model(sm, kube_server, inference_image)
        name = unique("kube-ep-fail")
        sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("AllTraffic", model, 1, 1.0)]))
        endpoint = wait_status(sm, name)
    finally:
        kube_server.kubelet.serving = lambda deployment: None
    assert endpoint["EndpointStatus"] == "Failed"
    assert "ImagePullBackOff" in endpoint["FailureReason"] and "403 Forbidden" in endpoint["FailureReason"]
    wait_until(lambda: not of_endpoint(emulator.objects("deployments"), name))


def wait_until(condition, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.1)


def test_a_runc_server_without_kubernetes_settings_says_which_one_rendering_needs(server, sagemaker,
                                                                                   inference_image):
    """`forklift k8s render` asks any server; one on runc with no [kubernetes] table cannot say which
    claim the pods would mount, and says so in one line (tests/control/test_training_render.py renders
    on a runc server that has the settings)."""
    from inference_support import deploy

    name = deploy(sagemaker, server, inference_image)
    shown = server.forklift("k8s", "render", "--endpoint", name)
    assert shown.returncode == 1 and shown.stdout == ""
    (line,) = shown.stderr.splitlines()
    assert "volume_claim" in line and "[kubernetes]" in line
    missing = server.forklift("k8s", "render", "--endpoint", "no-such-endpoint")
    assert missing.returncode == 1 and "Could not find endpoint no-such-endpoint" in missing.stderr


def test_a_restarted_server_serves_its_endpoint_from_the_same_deployment(kube_server, emulator, inference_image):
    sm = kube_server.client("sagemaker")
    model = create_model(sm, kube_server, inference_image, version="v1")
    name = unique("kube-ep-adopt")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("AllTraffic", model, 2, 1.0)]))
    assert wait_status(sm, name)["EndpointStatus"] == "InService"
    (before,) = of_endpoint(emulator.objects("deployments"), name)
    kube_server.stop()
    kube_server.start()
    sm, runtime = kube_server.client("sagemaker"), kube_server.client("sagemaker-runtime")
    wait_until(lambda: _answers(runtime, name))
    (after,) = of_endpoint(emulator.objects("deployments"), name)
    assert after["metadata"]["name"] == before["metadata"]["name"] and after["spec"]["replicas"] == 2
    assert len(of_endpoint(emulator.created("deployments"), name)) == 1  # adopted, never made again
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
    sm.delete_endpoint(EndpointName=name)


def _answers(runtime, name: str) -> bool:
    try:
        runtime.invoke_endpoint(EndpointName=name, Body=b"[[1, 2]]", ContentType="application/json")
    except Exception:  # noqa: BLE001 - not routed yet after the restart
        return False
    return True
