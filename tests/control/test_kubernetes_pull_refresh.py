"""A training Job's pull Secret is renewed from its credentials chain while its pod waits to pull.

The launcher runs in this process against kmock's Kubernetes API STAND-IN and the kubelet stand-in
(fixtures.kubeemulator), which holds the pod Pending as a cluster without room would; the registry is
real (TLS, basic auth) and the credentials come from a provider function registered with the real
CLI, changed with the real CLI while the pod waits. The launcher is given a refresh interval below
config.toml's 60-second minimum so the test does not wait minutes.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time

import pytest
from training_support import job_request, unique

from fixtures.kubeemulator import CLAIM, NAMESPACE, Emulator, Kubelet, PodOutcome
from fixtures.serve import ServeProcess
from forklift.cancel import NEVER
from forklift.config import load_settings
from forklift.control import staging
from forklift.control.kubernetes.pullrefresh import PullSource
from forklift.control.kubernetes.training import KubernetesTrainingLauncher, PullSecretPlan
from forklift.control.launching import ObtainedImage, TrainingContainer
from forklift.control.logs import job_dir
from forklift.control.models import TrainingJobRow
from forklift.devregistry import install_ca
from forklift.kube import names
from forklift.kube.cluster import Cluster
from forklift.kube.settings import KubeSettings
from forklift.kube.watch import ObjectWatch
from forklift.runtime import Mount

PROVIDER = "rotating-creds"


@pytest.fixture(scope="module")
def emulator():
    running = Emulator().start()
    yield running
    running.stop()


@pytest.fixture
def cluster_side(tmp_path, pki, basic_registry, emulator):
    """The launcher on a home of its own, the watch it reads, and the kubelet stand-in."""
    home = tmp_path / "home"
    install_ca(pki, home / "certs.d", basic_registry.address)
    kube = KubeSettings(namespace=NAMESPACE, volume_claim=CLAIM)
    cluster = Cluster(kube, api=emulator.api())
    watch = ObjectWatch(cluster, ("Job", "Pod"), {names.MANAGED_BY: names.MANAGED_BY_VALUE})
    watch.start()  # (kmock answers 404 to a listing of a kind it has never stored: the watch retries)
    launcher = KubernetesTrainingLauncher(load_settings(home), kube, cluster, watch, refresh_seconds=0.2)
    kubelet = Kubelet(emulator, home).start()
    yield launcher, kubelet, ServeProcess(home)  # ServeProcess: the CLI on that home (no server runs)
    kubelet.stop()
    watch.close()


def container_for(launcher: KubernetesTrainingLauncher, name: str, image: str, digest: str) -> TrainingContainer:
    directory = job_dir(launcher.settings.home, name)
    paths = staging.job_paths(directory)
    for path in (paths["config"], paths["model"], paths["output"] / "data"):
        path.mkdir(parents=True, exist_ok=True)
    mounts = [Mount(paths["config"].parent, "/opt/ml/input"), Mount(paths["config"], "/opt/ml/input/config", True),
              Mount(paths["model"], "/opt/ml/model"), Mount(paths["output"], "/opt/ml/output")]
    return TrainingContainer(name=f"tj-{name}-0123abcd", job=name, directory=directory, image=image,
                             resolved_image=f"{image.rsplit(':', 1)[0]}@{digest}",
                             entrypoint=["/bin/sh", "-c", "exit 0"], args=None, env={}, mounts=mounts,
                             instance_type="ml.m4.xlarge", isolated=False, vpc=False, hostname="algo-1", labels={},
                             max_runtime_seconds=None)


def secret_auth(emulator: Emulator, name: str, registry: str) -> str:
    """user:password in the stored Secret `name`."""
    (secret,) = [s for s in emulator.objects("secrets") if s["metadata"]["name"] == name]
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    return base64.b64decode(config["auths"][registry]["auth"]).decode()


def until(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer := check():
            return answer
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_pending_pods_secret_follows_the_provider_until_the_pod_pulls(
        cluster_side, emulator, basic_registry, training_images, secrets_registry, caplog):
    launcher, kubelet, cli = cluster_side
    user, first = basic_registry.username, basic_registry.password
    rotated = f"rotated-{unique('pw')}"
    secrets_registry.register("the provider's rotated password", rotated, user=user)
    cli.register_function(PROVIDER, user, first)
    pending, hold = threading.Event(), threading.Event()
    kubelet.outcome = lambda job: PodOutcome(pending=pending, hold=hold)
    name = unique("kube-refresh")
    row = TrainingJobRow(name=name, request=job_request(name, training_images.busybox, provider=PROVIDER))
    obtained = launcher.obtain(row, progress=None, cancel=NEVER)
    registry = basic_registry.address
    handle = launcher.start(container_for(launcher, name, training_images.busybox, obtained.digest), obtained)
    try:
        assert secret_auth(emulator, handle.name, registry) == f"{user}:{first}"
        until(lambda: kubelet.pods.get(handle.name), "the pod")

        # the provider is gone: each refresh fails with a warning; the job goes on, the Secret keeps what it had
        caplog.set_level(logging.WARNING, logger="forklift.control.kubernetes.pullrefresh")
        removed = cli.forklift("functions", "delete", PROVIDER)
        assert removed.returncode == 0, removed.stderr
        until(lambda: any("refreshing pull Secret" in r.getMessage() and handle.name in r.getMessage()
                          for r in caplog.records), "a failed refresh's warning")
        assert handle.wait(0) is None
        assert secret_auth(emulator, handle.name, registry) == f"{user}:{first}"

        # the provider answers with a new password: the waiting pod's Secret has it
        cli.register_function(PROVIDER, user, rotated)
        until(lambda: secret_auth(emulator, handle.name, registry) == f"{user}:{rotated}", "the renewed Secret")

        # the pod is scheduled and pulls with the renewed Secret; once its container runs, refreshing ends
        pending.set()
        assert handle.refresher is not None and handle.refresher.join(30), "refreshing went on after the pod started"
        assert handle.wait(0) is None, "the job ended: refreshing stopped for that reason, not for the start"
        pulled = kubelet.pulled_with[handle.name]["auths"][registry]["auth"]
        assert base64.b64decode(pulled).decode() == f"{user}:{rotated}"
        assert handle.refresher.refreshed >= 1
        assert not any(first in r.getMessage() or rotated in r.getMessage() for r in caplog.records)
    finally:
        handle.stop(grace=0)
        hold.set()
    assert [s for s in emulator.objects("secrets") if s["metadata"]["name"] == handle.name] == []


def test_an_anonymous_pull_has_no_secret_to_refresh(cluster_side, emulator, training_images):
    launcher, kubelet, _ = cluster_side
    hold = threading.Event()
    kubelet.outcome = lambda job: PodOutcome(hold=hold)
    name = unique("kube-anon")
    # what obtain hands start when the chain found no credentials (this test registry always asks for some)
    digest = "sha256:" + "0" * 64
    obtained = ObtainedImage(digest, PullSecretPlan(None, PullSource(training_images.busybox)))
    handle = launcher.start(container_for(launcher, name, training_images.busybox, digest), obtained)
    try:
        assert handle.refresher is None
        assert not (staging.job_paths(job_dir(launcher.settings.home, name))["container"] / "pull-source.json").exists()
        assert [s for s in emulator.objects("secrets") if s["metadata"]["name"] == handle.name] == []
    finally:
        handle.stop(grace=0)
        hold.set()
