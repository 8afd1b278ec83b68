"""The [kubernetes] table of config.toml, the top-level runtime key, and forklift serve's overrides."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from forklift.config import ConfigError, load_settings
from forklift.errors import ForkliftError
from forklift.kube.errors import InvalidSetting, KubeError
from forklift.kube.settings import KubeSettings, configured_runtime, kube_settings

FULL = """
runtime = "kubernetes"
[kubernetes]
namespace = "forklift"
kubeconfig = "~/kube/config"
context = "kind-forklift"
volume_claim = "forklift-home"
volume_subpath = "homes/forklift"
service_account = "forklift-workloads"
image_pull_policy = "Always"
gpu_resource = "amd.com/gpu"
service_domain = "cluster.example"
secret_refresh_seconds = 3600
[kubernetes.node_selector]
"node.kubernetes.io/instance-type" = "g5.xlarge"
pool = "gpu"
"""


def settings_with(tmp_path, text: str):
    (tmp_path / "config.toml").write_text(text)
    return load_settings(tmp_path)


def test_without_a_table_every_setting_has_its_default(tmp_path):
    settings = load_settings(tmp_path)
    assert kube_settings(settings) == KubeSettings()
    assert KubeSettings() == KubeSettings(namespace="default", volume_claim=None, volume_subpath="",
                                          image_pull_policy="IfNotPresent", gpu_resource="nvidia.com/gpu",
                                          service_domain="svc.cluster.local", secret_refresh_seconds=21600)
    assert configured_runtime(settings) == "runc"


def test_the_whole_table_is_read(tmp_path):
    settings = settings_with(tmp_path, FULL)
    kube = kube_settings(settings)
    assert configured_runtime(settings) == "kubernetes"
    assert kube == KubeSettings(
        namespace="forklift", kubeconfig=os.path.expanduser("~/kube/config"), context="kind-forklift",
        volume_claim="forklift-home", volume_subpath="homes/forklift", service_account="forklift-workloads",
        image_pull_policy="Always", gpu_resource="amd.com/gpu", service_domain="cluster.example",
        secret_refresh_seconds=3600, node_selector={"node.kubernetes.io/instance-type": "g5.xlarge", "pool": "gpu"})
    assert not kube.kubeconfig.startswith("~")


@pytest.mark.parametrize(("text", "expected"), [
    ('runtime = "k8s"', 'runtime = "k8s": must be "runc" or "kubernetes"'),
    ('[kubernetes]\nnamespace = "Forklift_NS"', 'kubernetes.namespace = "Forklift_NS": must be a DNS-1123 label'),
    ('[kubernetes]\nnamespace = "' + "a" * 64 + '"', "at most 63"),
    ('[kubernetes]\nvolume_claim = "Home"', 'kubernetes.volume_claim = "Home": must be a DNS-1123 subdomain'),
    ('[kubernetes]\nvolume_subpath = "../elsewhere"', 'must be a relative path without ".."'),
    ('[kubernetes]\nvolume_subpath = "/abs"', 'must be a relative path without ".."'),
    ('[kubernetes]\nimage_pull_policy = "always"', 'must be one of "Always", "IfNotPresent", "Never"'),
    ('[kubernetes]\ngpu_resource = "gpu"', 'such as "nvidia.com/gpu"'),
    ('[kubernetes]\nservice_account = "Bob"', "kubernetes.service_account"),
    ('[kubernetes]\nkubeconfig = ""', 'must be the path of a kubeconfig file, e.g. "~/.kube/config"'),
    ('[kubernetes]\nnode_selector = "gpu"', "must be a table of node labels"),
    ('[kubernetes]\nsecret_refresh_seconds = 5', "kubernetes.secret_refresh_seconds = 5: must be a number from 60"),
    ('[kubernetes]\nsecret_refresh_seconds = "6h"', "kubernetes.secret_refresh_seconds"),
    ('[kubernetes.node_selector]\n"a/b/c" = "x"', '"a/b/c" is not a label key'),
    ('[kubernetes.node_selector]\npool = "-gpu"', 'pool = "-gpu": a label value is a string of at most 63'),
    ('[kubernetes.node_selector]\npool = 3', "pool = 3: a label value is a string"),
    ('[kubernetes]\nnamespaces = "x"', "unknown key kubernetes.namespaces: did you mean kubernetes.namespace?"),
    ("kubernetes = 3", "kubernetes must be a table ([kubernetes] with keys namespace, kubeconfig"),
])
def test_a_wrong_value_is_named_with_its_fix(tmp_path, text, expected):
    (tmp_path / "config.toml").write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    assert str(tmp_path / "config.toml") in str(caught.value)
    assert expected in str(caught.value)


def test_the_same_rules_hold_for_settings_made_in_code():
    with pytest.raises(InvalidSetting, match=r"\[kubernetes\] namespace = 'Bad_NS': must be a DNS-1123 label"):
        KubeSettings(namespace="Bad_NS")
    with pytest.raises(InvalidSetting, match=r"\[kubernetes\] volume_subpath = 'a/../..'"):
        KubeSettings(volume_subpath="a/../..")
    assert issubclass(InvalidSetting, KubeError) and issubclass(KubeError, ForkliftError)
    assert issubclass(InvalidSetting, ValueError)


def test_node_selector_is_the_settings_own_copy():
    given = {"pool": "gpu"}
    settings = KubeSettings(node_selector=given)
    given["pool"] = "cpu"
    assert settings.node_selector == {"pool": "gpu"}
    assert hash(settings) == hash(KubeSettings(node_selector={"pool": "cpu"}))  # hashable; the dict aside
    assert settings != KubeSettings(node_selector={"pool": "cpu"})


def test_serve_flags_override_the_table(tmp_path):
    base = kube_settings(settings_with(tmp_path, FULL))
    assert base.with_overrides() == base
    changed = base.with_overrides(namespace="team-a", kubeconfig="~/other", context="prod")
    assert (changed.namespace, changed.kubeconfig, changed.context) == (
        "team-a", os.path.expanduser("~/other"), "prod")
    assert changed.volume_claim == base.volume_claim and base.namespace == "forklift"
    only = base.with_overrides(context="staging")
    assert (only.namespace, only.kubeconfig, only.context) == (base.namespace, base.kubeconfig, "staging")


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("namespace", "Team_A", "--namespace 'Team_A': must be a DNS-1123 label"),
    ("kubeconfig", " ", "--kubeconfig ' ': must be the path of a kubeconfig file"),
    ("context", "", "--context '': must be the name of a context in the kubeconfig"),
])
def test_a_wrong_flag_is_named(flag, value, expected):
    with pytest.raises(InvalidSetting) as caught:
        KubeSettings().with_overrides(**{flag: value})
    assert expected in str(caught.value)


def test_config_check_reads_the_table_and_counts_node_selector_as_one_key(tmp_path):
    (tmp_path / "config.toml").write_text(FULL)
    env = {**os.environ, "FORKLIFT_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "forklift", "config", "check"], capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "OK (12 keys set)" in result.stdout
    assert "  kubernetes.node_selector\n" in result.stdout and "pool" not in result.stdout
