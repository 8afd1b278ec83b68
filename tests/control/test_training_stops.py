"""StopTrainingJob takes effect whatever the job waits for before its container starts: a registry
that stalls mid-pull, a credentials-provider function that takes its time, a channel whose https
source stops sending. Each job ends Stopped (not Failed at the stall's timeout), nothing it started
is left running, and no container was ever made for it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from training_support import busybox_job, unique, wait_for

from fixtures.imagetools import push_unique_image
from fixtures.serve import ServeProcess, remove_containers
from fixtures.stallserver import GatedS3, SilentS3, StalledHttps
from forklift.devregistry import install_ca

STALL = 300.0  # how long the fault proxy holds a blob: far past any bound below
STOPPED = 60.0  # how long a stopped job may take to end Stopped here (stop_grace_seconds is 5)
GRACE = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, _fault_proxy) -> Iterator[ServeProcess]:
    """A server that trusts the test CA for the fault proxy's registry and for https channels."""
    home = tmp_path_factory.mktemp("stops-serve-home")
    for address in (basic_registry.address, _fault_proxy.address):
        install_ca(pki, home / "certs.d", address)
    (home / "config.toml").write_text(f"stop_grace_seconds = {GRACE}\n")
    running = ServeProcess(home, extra_env={"SSL_CERT_FILE": str(pki.ca_cert)})
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
    running.start()
    yield running
    running.stop()
    remove_containers(home)


@pytest.fixture
def sagemaker(server: ServeProcess):
    return server.client("sagemaker")


@pytest.fixture
def fresh_image(tmp_path_factory, pki, basic_registry, busybox_rootfs) -> str:
    """An image (repository path) the server has not pulled, so its blobs come from the registry."""
    return push_unique_image(tmp_path_factory, pki, basic_registry, busybox_rootfs, "stop")


def stop_and_wait(sagemaker, name: str) -> tuple[dict, float]:
    began = time.monotonic()
    sagemaker.stop_training_job(TrainingJobName=name)
    job = wait_for(sagemaker, name, until=("Completed", "Failed", "Stopped"), timeout=STOPPED)
    return job, time.monotonic() - began


def assert_stopped_before_start(job: dict, server: ServeProcess) -> None:
    assert job["TrainingJobStatus"] == "Stopped", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Stopped" and "FailureReason" not in job
    assert job["SecondaryStatusTransitions"][-1]["StatusMessage"] == "Training job stopped before its container started"
    name = job["TrainingJobName"]
    assert not list((server.home / "jobs" / name).glob("container/container.json"))
    assert f"tj-{name}" not in runc_ids()


def runc_ids() -> str:
    return subprocess.run(["runc", "list", "-q"], capture_output=True, text=True, check=False).stdout


def wait_until(condition, what: str, timeout: float = STOPPED) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_stop_during_a_stalled_pull_ends_the_job_stopped(sagemaker, server, fault_proxy, fresh_image):
    fault_proxy.delay(STALL, "/blobs/")  # the registry answers the manifest, then holds every blob
    name = unique("stalled-pull")
    sagemaker.create_training_job(**busybox_job(name, f"{fault_proxy.address}/{fresh_image}", "true"))
    wait_for(sagemaker, name, until=("Downloading",))
    assert fault_proxy.wait_arrival("/blobs/", STOPPED), "the pull never asked the registry for a blob"
    job, took = stop_and_wait(sagemaker, name)
    print(f"stop during a stalled pull: {job['TrainingJobStatus']} {took:.1f} s after StopTrainingJob")
    assert_stopped_before_start(job, server)


def test_stop_during_a_slow_provider_function_kills_it(sagemaker, server, training_images, tmp_path):
    said = tmp_path / "provider.json"
    handler = tmp_path / "slow_provider.py"
    handler.write_text(
        "import json, os, time\n"
        "def handler(event, context):\n"
        f"    open({str(said)!r}, 'w').write(json.dumps({{'pid': os.getpid(), 'home': os.environ['HOME']}}))\n"
        f"    time.sleep({STALL})\n"
        "    return {'Credentials': {'Username': 'late', 'Password': 'too-late'}}\n")
    provider = unique("slow-provider")
    registered = server.forklift("functions", "register", provider, "--handler", str(handler), "--timeout", "600")
    assert registered.returncode == 0, registered.stderr
    name = unique("slow-provider-job")
    sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "true", provider=provider))
    wait_until(lambda: said.exists() and said.read_text().endswith("}"), "the provider to run")
    running = json.loads(said.read_text())
    job, _ = stop_and_wait(sagemaker, name)
    assert_stopped_before_start(job, server)
    wait_until(lambda: not _alive(running["pid"]), "the provider's process to end", timeout=10)
    assert not Path(running["home"]).exists()  # its private HOME and TMPDIR went with it


def test_stop_during_stalled_staging_ends_the_job_stopped(sagemaker, server, training_images, pki):
    source = StalledHttps(pki)
    try:
        name = unique("stalled-staging")
        channel = {"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"{source.url}/data/train.csv",
            "S3DataDistributionType": "FullyReplicated"}}}
        sagemaker.create_training_job(**busybox_job(name, training_images.busybox, "true",
                                                    InputDataConfig=[channel]))
        assert source.gets.wait(STOPPED), "the job never asked the https source for its channel"
        job, _ = stop_and_wait(sagemaker, name)
        assert_stopped_before_start(job, server)
    finally:
        source.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its parent's wait() has ended too
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_a_stop_during_a_stalled_upload_gives_it_the_grace_period(tmp_path_factory, pki, basic_registry,
                                                                  training_images):
    # The model of a stopped job is uploaded (as on SageMaker); a stop that comes while the upload hangs
    # gives it stop_grace_seconds, then the job ends Stopped without waiting for the endpoint's timeouts.
    endpoint = SilentS3()
    home = tmp_path_factory.mktemp("stops-upload-home")
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text(f'stop_grace_seconds = {GRACE}\ns3_endpoint_url = "{endpoint.url}"\n')
    running = ServeProcess(home)
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    running.start()
    try:
        sagemaker = running.client("sagemaker")
        name = unique("stalled-upload")
        sagemaker.create_training_job(**busybox_job(name, training_images.busybox,
                                                    "echo weights > /opt/ml/model/model.txt"))
        wait_for(sagemaker, name, until=("Uploading", "Completed", "Failed", "Stopped"))
        assert endpoint.requests.wait(STOPPED), "the upload never reached the S3 endpoint"
        job, _ = stop_and_wait(sagemaker, name)
        assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped", job.get("FailureReason")
        assert job["SecondaryStatusTransitions"][-1]["StatusMessage"] == (
            f"Training job stopped: the model upload did not finish within stop_grace_seconds ({GRACE} s) of the stop")
    finally:
        running.stop()
        remove_containers(home)
        endpoint.close()


def test_the_upload_after_a_stop_during_training_is_bounded(tmp_path_factory, pki, basic_registry, training_images):
    # The model of a job stopped while it trains is uploaded, but an S3 that never answers must not keep
    # it Stopping for the endpoint's timeouts: the upload gets stop_grace_seconds from its start.
    endpoint = SilentS3()
    home = tmp_path_factory.mktemp("stops-upload-after-home")
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text(f'stop_grace_seconds = {GRACE}\ns3_endpoint_url = "{endpoint.url}"\n')
    running = ServeProcess(home)
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    running.start()
    try:
        sagemaker = running.client("sagemaker")
        name = unique("stopped-training-upload")
        sagemaker.create_training_job(**busybox_job(name, training_images.busybox,
                                                    "echo weights > /opt/ml/model/model.txt; sleep 300"))
        wait_for(sagemaker, name, until=("Training", "Completed", "Failed", "Stopped"))
        job, _ = stop_and_wait(sagemaker, name)
        assert endpoint.requests.is_set(), "the stopped job's model upload never reached the S3 endpoint"
        assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped", job.get("FailureReason")
        assert job["SecondaryStatusTransitions"][-1]["StatusMessage"] == (
            f"Training job stopped: the model upload did not finish within stop_grace_seconds ({GRACE} s) of its start")
    finally:
        running.stop()
        remove_containers(home)
        endpoint.close()


def test_an_upload_that_ends_after_the_job_gave_up_on_it_is_deleted(tmp_path_factory, pki, basic_registry,
                                                                    training_images):
    # A job reported Stopped because its model upload did not finish must not have a model in S3 all the
    # same when the S3 endpoint answers later: the upload's thread deletes what it put there.
    endpoint = GatedS3()
    home = tmp_path_factory.mktemp("stops-late-upload-home")
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text(f'stop_grace_seconds = {GRACE}\ns3_endpoint_url = "{endpoint.url}"\n')
    running = ServeProcess(home)
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    running.start()
    try:
        sagemaker = running.client("sagemaker")
        name = unique("late-upload")
        sagemaker.create_training_job(**busybox_job(name, training_images.busybox,
                                                    "echo weights > /opt/ml/model/model.txt"))
        assert endpoint.puts.wait(STOPPED), "the upload never reached the S3 endpoint"
        job, _ = stop_and_wait(sagemaker, name)
        assert job["TrainingJobStatus"] == "Stopped", job.get("FailureReason")
        assert "the model upload did not finish" in job["SecondaryStatusTransitions"][-1]["StatusMessage"]
        endpoint.release()  # the PutObject succeeds after all
        model = f"/{name}/output/model.tar.gz"
        wait_until(lambda: any(m == "DELETE" and p.endswith(model) for m, p in endpoint.requests),
                   "the late model.tar.gz to be deleted")
    finally:
        running.stop()
        remove_containers(home)
        endpoint.close()
