"""The real-cluster suite (layer 3 of the Kubernetes testing; what to set: tests/k8s/test_k8s_training.py).

Every test marked `k8s` runs only when KUBECONFIG names a cluster; otherwise it is skipped with the
reason below, which `pytest -ra` prints. Nothing in CI sets KUBECONFIG: CI has never run these.
"""

from __future__ import annotations

import os

import pytest

NO_CLUSTER = "skipped: no cluster (set KUBECONFIG)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("KUBECONFIG"):
        return
    skip = pytest.mark.skip(reason=NO_CLUSTER)
    for item in items:
        if item.get_closest_marker("k8s") is not None:
            item.add_marker(skip)
