"""A training job whose registry goes down mid-pull: the outage is waited out, and said so.

The job's image is pulled through a TCP proxy (tests/fixtures/tcpfault.py) in front of the real
registry; the proxy cuts every connection part-way through the layer and refuses new ones for a
few seconds, well inside the server's default registry_retry_seconds (60).
"""

from __future__ import annotations

import time

import pytest
from training_support import busybox_job, unique, wait_for

from fixtures.tcpfault import TcpFaultProxy
from forklift.devregistry import install_ca

OUTAGE = 4.0


@pytest.fixture
def tcp(basic_registry, pki, server):
    with TcpFaultProxy(basic_registry.registry.port) as proxy:
        install_ca(pki, server.home / "certs.d", proxy.address)
        yield proxy


def test_a_registry_outage_mid_pull_is_waited_out_and_shown_in_the_status(sagemaker, training_images, tcp):
    image = training_images.busybox.replace(training_images.busybox.split("/")[0], tcp.address)
    tcp.down_after(300_000, seconds=OUTAGE)  # inside the busybox layer
    name = unique("outage")
    sagemaker.create_training_job(**busybox_job(name, image, "true"))
    messages: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = sagemaker.describe_training_job(TrainingJobName=name)
        messages += [t.get("StatusMessage", "") for t in job["SecondaryStatusTransitions"]
                     if t["Status"] == "Downloading"]
        if job["TrainingJobStatus"] != "InProgress":
            break
        time.sleep(0.1)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert tcp.outages == 1
    retrying = [m for m in messages if "retrying" in m]
    assert retrying, f"no status message said the pull was retrying: {sorted(set(messages))}"
    refused = f"Downloading the training image {image}: registry {tcp.address} unavailable (connection refused); " \
        "retrying, up to "
    assert any(m.startswith(refused) for m in retrying), retrying
