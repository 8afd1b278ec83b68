"""Without a cluster the real-cluster suite says so, test by test, and never passes for one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).with_name("test_k8s_training.py")
ROOT = Path(__file__).parents[2]


def run_suite(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("FORKLIFT_K8S_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", str(SUITE)],
                          cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=300, check=False)


def test_without_kubeconfig_every_test_is_skipped_with_the_reason_printed():
    result = run_suite()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIPPED [3] tests/k8s/test_k8s_training.py: skipped: no cluster (set KUBECONFIG)" in result.stdout
    assert "3 skipped" in result.stdout and "passed" not in result.stdout


def test_a_named_cluster_without_the_suites_settings_is_skipped_naming_them(tmp_path):
    result = run_suite(KUBECONFIG=str(tmp_path / "kubeconfig"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("skipped: a cluster is named but FORKLIFT_K8S_VOLUME_CLAIM, FORKLIFT_K8S_HOME, FORKLIFT_K8S_IMAGE "
            "not set") in result.stdout
    assert "passed" not in result.stdout
