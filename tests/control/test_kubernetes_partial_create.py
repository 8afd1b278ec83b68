"""A training Job the API server refuses leaves no pull Secret (or NetworkPolicy) behind: the
launcher runs in this process against a Kubernetes API STAND-IN of its own (fixtures.kubeemulator),
told to answer the Job's creation with 422 as an admission webhook or a quota would; script mode's
staged code is opened to the pod's user before that."""

from __future__ import annotations

import pytest

from fixtures import secretscan
from fixtures.kubeemulator import CLAIM, NAMESPACE, Emulator
from forklift.config import Settings
from forklift.control import staging
from forklift.control.kubernetes.pullrefresh import PullSource
from forklift.control.kubernetes.training import KubernetesTrainingLauncher, PullSecretPlan
from forklift.control.launching import ObtainedImage, PlatformFailure, TrainingContainer
from forklift.kube.cluster import Cluster
from forklift.kube.names import MANAGED_BY, MANAGED_BY_VALUE
from forklift.kube.settings import KubeSettings
from forklift.kube.watch import ObjectWatch
from forklift.runtime import Mount

IMAGE = "registry.example.com:5000/team/train:1"


def test_a_refused_job_takes_its_secret_and_network_policy_with_it(tmp_path):
    emulator = Emulator().start()
    emulator.handler[f"post /apis/batch/v1/namespaces/{NAMESPACE}/jobs"] << 422
    watch = None
    try:
        settings = Settings(home=tmp_path / "home")
        directory = settings.home / "jobs" / "refused"
        paths = staging.job_paths(directory)
        for key in ("config", "model", "output"):
            paths[key].mkdir(parents=True)
        (paths["output"] / "data").mkdir()
        kube = KubeSettings(namespace=NAMESPACE, volume_claim=CLAIM)
        cluster = Cluster(kube, api=emulator.api())
        watch = ObjectWatch(cluster, ("Job", "Pod"), {MANAGED_BY: MANAGED_BY_VALUE})
        launcher = KubernetesTrainingLauncher(settings, kube, cluster, watch)
        container = TrainingContainer(
            name="tj-refused-0a1b2c3d", job="refused", directory=directory, image=IMAGE,
            resolved_image=f"registry.example.com:5000/team/train@sha256:{'b' * 64}", entrypoint=None,
            args=["train"], env={}, mounts=[Mount(paths["config"].parent, "/opt/ml/input"),
                                            Mount(paths["model"], "/opt/ml/model")],
            instance_type=None, isolated=True, vpc=False, hostname="algo-1", labels={}, max_runtime_seconds=None)
        secretscan.register("a registry password", "refused-pass-9", user="trainer")
        obtained = ObtainedImage("sha256:" + "b" * 64, PullSecretPlan(("trainer", "refused-pass-9"), PullSource(IMAGE)))
        with pytest.raises(PlatformFailure, match="did not accept the training job"):
            launcher.start(container, obtained)
        assert emulator.created("secrets") and emulator.created("networkpolicies")  # they were made first
        assert emulator.objects("secrets") == [] and emulator.objects("networkpolicies") == []
    finally:
        if watch is not None:
            watch.close()
        emulator.stop()


def test_script_mode_code_is_opened_to_the_pods_user_before_the_job_is_made(tmp_path):
    """The pod's user is known only to the cluster; the archive may have made the code private to the
    server. The code is opened up before the Job is sent, accepted or not."""
    emulator = Emulator().start()
    emulator.handler[f"post /apis/batch/v1/namespaces/{NAMESPACE}/jobs"] << 422
    watch = None
    try:
        settings = Settings(home=tmp_path / "home")
        directory = settings.home / "jobs" / "script"
        paths = staging.job_paths(directory)
        for key in ("config", "model", "output"):
            paths[key].mkdir(parents=True)
        (paths["output"] / "data").mkdir()
        (paths["code"] / "lib").mkdir(parents=True)
        (paths["code"] / "lib" / "train.py").write_text("print('hi')\n")
        (paths["code"] / "lib" / "train.py").chmod(0o600)
        (paths["code"] / "lib").chmod(0o700)
        kube = KubeSettings(namespace=NAMESPACE, volume_claim=CLAIM)
        cluster = Cluster(kube, api=emulator.api())
        watch = ObjectWatch(cluster, ("Job", "Pod"), {MANAGED_BY: MANAGED_BY_VALUE})
        launcher = KubernetesTrainingLauncher(settings, kube, cluster, watch)
        container = TrainingContainer(
            name="tj-script-0a1b2c3d", job="script", directory=directory, image=IMAGE,
            resolved_image=f"registry.example.com:5000/team/train@sha256:{'b' * 64}", entrypoint=None,
            args=["train"], env={}, mounts=[Mount(paths["config"].parent, "/opt/ml/input"),
                                            Mount(paths["code"], "/opt/ml/code")],
            instance_type=None, isolated=False, vpc=False, hostname="algo-1", labels={}, max_runtime_seconds=None)
        obtained = ObtainedImage("sha256:" + "b" * 64, PullSecretPlan(None, PullSource(IMAGE)))
        with pytest.raises(PlatformFailure, match="did not accept the training job"):
            launcher.start(container, obtained)
        assert (paths["code"] / "lib" / "train.py").stat().st_mode & 0o777 == 0o666
        assert (paths["code"] / "lib").stat().st_mode & 0o777 == 0o777
        assert paths["code"].stat().st_mode & 0o777 == 0o777
    finally:
        if watch is not None:
            watch.close()
        emulator.stop()
