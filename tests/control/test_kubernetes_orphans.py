"""Objects with forklift's label that the database does not account for are reported when the server
starts, and left where they are: a real `forklift serve --runtime kubernetes` against kmock's
Kubernetes API STAND-IN and the kubelet stand-in (fixtures.kubeemulator), boto3 for the jobs.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from kubernetes import client
from training_support import busybox_job, kube_training_server, unique, wait_for

from fixtures.kubeemulator import NAMESPACE, Emulator, Kubelet, PodOutcome
from fixtures.serve import ServeProcess
from forklift import audit
from forklift.kube import names

MANAGED = {names.MANAGED_BY: names.MANAGED_BY_VALUE}
GHOST_JOB = "tj-ghost-job-0123abcd"
GHOST_DEPLOYMENT = "ep-ghost-endpoint-allt-1"


@pytest.fixture(scope="module")
def emulator():
    running = Emulator().start()
    yield running
    running.stop()


def job_body(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {
                "restartPolicy": "Never", "containers": [{"name": "algo", "image": "busybox"}]}}}}


@pytest.fixture(scope="module")
def strays(emulator):
    """What a lost database, or an older server, left behind: made before the server first starts."""
    api = emulator.api()
    core, batch, apps = client.CoreV1Api(api), client.BatchV1Api(api), client.AppsV1Api(api)
    ghost = {**MANAGED, names.TRAINING_JOB: "ghost-job"}
    batch.create_namespaced_job(NAMESPACE, job_body(GHOST_JOB, ghost))
    core.create_namespaced_secret(NAMESPACE, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
        "name": GHOST_JOB, "labels": ghost}, "data": {"note": "bm90IGEgc2VjcmV0"}})
    # its pod, as the Job controller would make it: it goes with the Job, so it is not reported by itself
    core.create_namespaced_pod(NAMESPACE, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"{GHOST_JOB}-q4m8z", "labels": {**ghost, "batch.kubernetes.io/job-name": GHOST_JOB}},
        "spec": {"containers": [{"name": "algo", "image": "busybox"}]}})
    # one owned by another object: the cluster's garbage collector removes it with its owner
    core.create_namespaced_pod(NAMESPACE, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "ghost-owned", "labels": ghost, "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": "elsewhere", "uid": "3f1c2d4e-0000-4000-8000-000000000001",
            "controller": True}]}, "spec": {"containers": [{"name": "algo", "image": "busybox"}]}})
    variant = names.variant_labels("ghost-endpoint", "AllTraffic", 1)
    apps.create_namespaced_deployment(NAMESPACE, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": GHOST_DEPLOYMENT, "labels": variant}, "spec": {
        "selector": {"matchLabels": variant}, "template": {"metadata": {"labels": variant}, "spec": {
            "containers": [{"name": "model", "image": "busybox"}]}}}})
    # its Service goes with it (one name for both)
    core.create_namespaced_service(NAMESPACE, {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": GHOST_DEPLOYMENT, "labels": variant}, "spec": {"selector": variant, "ports": [{"port": 8080}]}})
    # labelled forklift's but naming neither a job nor an endpoint: not forklift's to judge
    core.create_namespaced_service(NAMESPACE, {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "someone-elses", "labels": MANAGED}, "spec": {"ports": [{"port": 80}]}})
    return {"jobs": GHOST_JOB, "secrets": GHOST_JOB, "deployments": GHOST_DEPLOYMENT, "services": "someone-elses",
            "pods": "ghost-owned"}


@pytest.fixture(scope="module")
def kube_server(tmp_path_factory, pki, basic_registry, training_images, emulator, strays):
    running = kube_training_server(tmp_path_factory.mktemp("kube-orphans-home"), pki, basic_registry, emulator).start()
    kubelet = Kubelet(emulator, running.home)
    # the stray Deployment's pods never start (its image is long gone): no model server to play
    kubelet.serving = lambda d: ("ErrImagePull", "not found") if d["metadata"]["name"] == GHOST_DEPLOYMENT else None
    kubelet.start()
    running.kubelet = kubelet  # type: ignore[attr-defined]
    yield running
    kubelet.stop()
    running.stop()


def stored(emulator: Emulator, plural: str, name: str) -> bool:
    return any(o["metadata"]["name"] == name for o in emulator.objects(plural))


def reports(text: str) -> dict[str, str]:
    """kind/name -> the warning line that reports it."""
    found = {}
    for line in text.splitlines():
        match = re.search(r"orphaned Kubernetes object: (\w+) (\S+) in namespace", line)
        if match:
            found[f"{match[1]}/{match[2]}"] = line
    return found


def logged_after(server: ServeProcess, start: int, what: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log()[start:]
        if what in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"the server log never said {what!r}: {server.log()[start:][-3000:]}")


def test_objects_no_job_or_endpoint_accounts_for_are_reported_and_kept(kube_server, emulator, strays):
    text = logged_after(kube_server, 0, "none deleted")
    assert f"2 orphaned Kubernetes object(s) in namespace {NAMESPACE}, none deleted" in text
    found = reports(text)
    job = found[f"Job/{GHOST_JOB}"]
    assert f"in namespace {NAMESPACE} ({names.TRAINING_JOB}=ghost-job)" in job
    assert "no training job ghost-job is in this server's database" in job
    # the Secret is not listed (forklift may not read Secrets): the Job's command removes it too
    assert (f"`kubectl -n {NAMESPACE} delete job/{GHOST_JOB} secret/{GHOST_JOB} networkpolicy/{GHOST_JOB} "
            "--ignore-not-found`") in job
    deployment = found[f"Deployment/{GHOST_DEPLOYMENT}"]
    assert f"{names.ENDPOINT}=ghost-endpoint,{names.VARIANT}=AllTraffic,{names.GENERATION}=1" in deployment
    assert "no endpoint ghost-endpoint is in this server's database" in deployment
    assert f"delete deployment/{GHOST_DEPLOYMENT} service/{GHOST_DEPLOYMENT} secret/" in deployment
    # pods go with their owners, the Service with its Deployment; an object naming neither a job nor an
    # endpoint is not judged
    assert set(found) == {f"Job/{GHOST_JOB}", f"Deployment/{GHOST_DEPLOYMENT}"}, found
    # nothing was deleted
    for plural, name in strays.items():
        assert stored(emulator, plural, name), (plural, name)
    # and each is on record in the audit log
    records = [r for r in audit.read(kube_server.home) if isinstance(r, dict) and r.get("event") == "orphan"]
    assert {r["resource"] for r in records} == {f"Job/{NAMESPACE}/{GHOST_JOB}",
                                                f"Deployment/{NAMESPACE}/{GHOST_DEPLOYMENT}"}
    shown = kube_server.forklift("audit")
    assert shown.returncode == 0 and f"kubectl -n {NAMESPACE} delete job/{GHOST_JOB}" in shown.stdout, shown.stdout


def test_after_a_restart_a_running_jobs_objects_are_not_orphans_but_an_ended_jobs_are(
        kube_server, emulator, training_images):
    sagemaker = kube_server.client("sagemaker")
    done = unique("kube-done")
    kube_server.kubelet.outcome = lambda job: PodOutcome()
    sagemaker.create_training_job(**busybox_job(done, training_images.busybox, "exit 0"))
    assert wait_for(sagemaker, done)["TrainingJobStatus"] == "Completed"
    hold = threading.Event()
    kube_server.kubelet.outcome = lambda job: PodOutcome(hold=hold)
    running = unique("kube-running")
    sagemaker.create_training_job(**busybox_job(running, training_images.busybox, "sleep 600"))
    wait_for(sagemaker, running, until=("Training",))
    # an object the ended job left (its server died before it removed it)
    stale = f"tj-{done}-0badc0de"
    client.BatchV1Api(emulator.api()).create_namespaced_job(
        NAMESPACE, job_body(stale, {**MANAGED, names.TRAINING_JOB: done}))

    kube_server.stop()
    start = len(kube_server.log())
    kube_server.start()
    try:
        text = logged_after(kube_server, start, "none deleted")  # the last line of the report
        found = reports(text)
        assert f"training job {done} has ended (Completed)" in found[f"Job/{stale}"]
        assert not [key for key in found if running in key], found
        # (the emulator has no garbage collector, and the kubelet stand-in's pods no owner: the ended job's
        # pod is still stored, and reported too)
        assert stored(emulator, "jobs", stale)
    finally:
        hold.set()
    assert wait_for(kube_server.client("sagemaker"), running)["TrainingJobStatus"] == "Completed"
