"""Soak (marked `soak`, run by `make soak`, not by `make test`): a real `forklift serve` on runc, on SQLite
and on PostgreSQL, taking for FORKLIFT_SOAK_SECONDS (default 600) the calls of bench/load.py
(InvokeEndpoint, DescribeTrainingJob, ListTrainingJobs, CreateTrainingJob) from boto3 clients that
retry as boto3 does, beside endpoint churn (create, call, delete) and job churn (create, some stopped).

Then: no answer was a 5xx and no call failed (a throttled call that botocore's retries got answered is
fine); every job ended Completed or Stopped; once everything is deleted, no runc container and no mount
of this FORKLIFT_HOME is left, and every container's state dir is released; the server's memory grew by
no more than a bound from the first quarter of the run to its end; its log holds no traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from inference_support import (
    ROLE,
    VPC,
    create_config,
    create_model,
    function_arn,
    predict,
    prepare_home,
    unique,
    wait_status,
)

from fixtures.serve import CREDENTIALS, REGION, ServeProcess, remove_containers

pytestmark = pytest.mark.soak
SECONDS = float(os.environ.get("FORKLIFT_SOAK_SECONDS", "600"))
RETRYING = Config(retries={"max_attempts": 5, "mode": "legacy"}, connect_timeout=10, read_timeout=60)
TERMINAL = ("Completed", "Failed", "Stopped")
GROWTH_MIB = 64  # what the server's RSS may grow by after its first quarter, beyond a quarter of it


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class Soak:
    """The run's clients, what they made, and every failed call."""

    def __init__(self, server: ServeProcess, image: str):
        self.server, self.image = server, image
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.failures: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.jobs: list[str] = []
        self.endpoints: list[str] = []

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.server.url, region_name=REGION, config=RETRYING, **CREDENTIALS)

    def record(self, what: str, call: Callable[[], object]) -> object:
        try:
            result = call()
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            with self.lock:
                self.failures[f"{what}: {status} {exc.response['Error'].get('Code')}"] += 1
            return None
        except (BotoCoreError, AssertionError) as exc:  # a timeout, a dropped connection, an endpoint not up
            with self.lock:
                self.failures[f"{what}: {type(exc).__name__}: {exc}"[:200]] += 1
            return None
        with self.lock:
            self.calls[what] += 1
        return result

    def loop(self, step: Callable[[random.Random], None], seed: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(seed)
            while not self.done.is_set():
                try:
                    step(rng)
                except Exception as exc:  # noqa: BLE001 - a call outside `record` failed: counted, not lost
                    with self.lock:
                        self.failures[f"{step.__qualname__}: {type(exc).__name__}: {exc}"[:200]] += 1
                    self.done.wait(1)
        return run

    # -- the calls of bench/load.py -----------------------------------------------------------
    def invoking(self, endpoint: str) -> Callable[[random.Random], None]:
        runtime = self.client("sagemaker-runtime")
        return lambda rng: self.record("InvokeEndpoint", lambda: predict(runtime, endpoint, [[1.0, 2.0]]))

    def reading(self) -> Callable[[random.Random], None]:
        sm = self.client("sagemaker")

        def step(rng: random.Random) -> None:
            if self.jobs and rng.random() < 0.6:
                name = rng.choice(self.jobs)
                self.record("DescribeTrainingJob", lambda: sm.describe_training_job(TrainingJobName=name))
            else:
                self.record("ListTrainingJobs", lambda: sm.list_training_jobs(MaxResults=100))
        return step

    def job_churn(self) -> Callable[[random.Random], None]:
        sm = self.client("sagemaker")

        def step(rng: random.Random) -> None:
            name = unique("soak-job")
            created = self.record("CreateTrainingJob", lambda: sm.create_training_job(
                TrainingJobName=name, RoleArn=ROLE, VpcConfig=VPC,
                AlgorithmSpecification={
                    "TrainingImage": self.image, "TrainingInputMode": "File",
                    "ContainerEntrypoint": ["python3", "-c", "import time; time.sleep(2)"],
                    "TrainingImageConfig": {"TrainingRepositoryAccessMode": "Vpc", "TrainingRepositoryAuthConfig": {
                        "TrainingRepositoryCredentialsProviderArn": function_arn("registry-creds")}}},
                OutputDataConfig={"S3OutputPath": "s3://soak-out/models"},
                ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                StoppingCondition={"MaxRuntimeInSeconds": 600}))
            if created is None:
                return
            with self.lock:
                self.jobs.append(name)
            self.done.wait(rng.uniform(0.5, 3))
            if rng.random() < 0.5:
                self.record("StopTrainingJob", lambda: self.stop(sm, name))
            self.done.wait(1)
        return step

    @staticmethod
    def stop(sm, name: str) -> None:
        """StopTrainingJob; a job that ended first is answered ValidationException, as on SageMaker, and
        that is no failure (any other refusal is)."""
        try:
            sm.stop_training_job(TrainingJobName=name)
        except ClientError as exc:
            ended = sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in TERMINAL
            if exc.response["Error"]["Code"] != "ValidationException" or not ended:
                raise

    def endpoint_churn(self) -> Callable[[random.Random], None]:
        sm, runtime = self.client("sagemaker"), self.client("sagemaker-runtime")

        def step(rng: random.Random) -> None:
            name = unique("soak-endpoint")
            model = create_model(sm, self.server, self.image)
            config = create_config(sm, [("AllTraffic", model, 1, 1.0)])
            if self.record("CreateEndpoint", lambda: sm.create_endpoint(EndpointName=name,
                                                                          EndpointConfigName=config)) is None:
                return
            with self.lock:
                self.endpoints.append(name)
            if rng.random() < 0.7:  # else deleted while it comes up
                up = self.record("EndpointInService", lambda: wait_status(sm, name, until=("InService",),
                                                                          timeout=120))
                if up is not None:
                    self.record("InvokeEndpoint", lambda: predict(runtime, name, [[1.0, 1.0]]))
            self.record("DeleteEndpoint", lambda: sm.delete_endpoint(EndpointName=name))
            self.record("DeleteEndpointConfig", lambda: sm.delete_endpoint_config(EndpointConfigName=config))
            self.record("DeleteModel", lambda: sm.delete_model(ModelName=model))
        return step


def _gone(sm, name: str) -> bool:
    try:
        sm.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        return exc.response["Error"]["Code"] == "ValidationException"
    return False


def _wait_for(what: str, done: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(0.5)


def _runc_containers_under(home: Path) -> list[str]:
    listed = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True, check=True).stdout
    return [c["id"] for c in json.loads(listed or "[]") or [] if str(c.get("bundle", "")).startswith(str(home))]


def _mounts_under(home: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if str(home) in line]


@pytest.fixture
def soak_server(tmp_path, pki, basic_registry, inference_image, database) -> Iterator[ServeProcess]:
    home = tmp_path / "home"
    home.mkdir()
    server = prepare_home(home, pki, basic_registry, database)
    (home / "buckets" / "soak-out").mkdir(parents=True)
    server.start()
    yield server
    server.stop()
    remove_containers(home)


def test_a_long_mixed_load_with_churn_ends_clean(soak_server: ServeProcess, inference_image: str) -> None:
    server, home = soak_server, soak_server.home
    soak = Soak(server, inference_image)
    sm = soak.client("sagemaker")
    stable = unique("soak-stable")
    sm.create_endpoint(EndpointName=stable, EndpointConfigName=create_config(
        sm, [("AllTraffic", create_model(sm, server, inference_image), 1, 1.0)]))
    assert wait_status(sm, stable, timeout=120)["EndpointStatus"] == "InService"
    assert server.process is not None
    steps = [soak.invoking(stable), soak.invoking(stable), soak.reading(), soak.reading(), soak.job_churn(),
             soak.endpoint_churn()]
    threads = [threading.Thread(target=soak.loop(step, seed), daemon=True) for seed, step in enumerate(steps)]
    for thread in threads:
        thread.start()
    soak.done.wait(SECONDS / 4)
    warmed = _rss_mib(server.process.pid)
    soak.done.wait(SECONDS * 3 / 4)
    soak.done.set()
    for thread in threads:
        thread.join(240)
    assert not any(thread.is_alive() for thread in threads), "a client did not stop"
    ended = _rss_mib(server.process.pid)

    sm.delete_endpoint(EndpointName=stable)
    _wait_for("every job's end", lambda: all(
        sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in TERMINAL for name in soak.jobs))
    _wait_for("every endpoint's deletion", lambda: all(_gone(sm, name) for name in [stable, *soak.endpoints]))
    statuses = Counter(sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] for name in soak.jobs)
    failed = {name: job["FailureReason"] for name in soak.jobs
              if (job := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] == "Failed"}

    print(f"soak of {SECONDS:g} s: calls {dict(soak.calls)}, jobs {dict(statuses)}, "
          f"server RSS {warmed:.0f} -> {ended:.0f} MiB")
    assert soak.failures == Counter(), soak.failures
    assert soak.calls["InvokeEndpoint"] > 0 and soak.calls["CreateEndpoint"] > 0 and soak.jobs
    assert failed == {}
    _wait_for("the containers' removal", lambda: _runc_containers_under(home) == [], timeout=60)
    assert _mounts_under(home) == []
    # Every container's state dir is released: its runc container deleted, its overlay unmounted, its
    # network namespace and address returned. (The released dirs of stopped instances stay, with the
    # endpoint's logs.)
    states = [*home.glob("endpoints/*/instances/*"), *home.glob("jobs/*/container")]
    assert states and [str(p) for p in states if not (p / ".released").exists()] == []
    assert ended - warmed <= GROWTH_MIB + warmed / 4, f"server RSS grew from {warmed:.0f} to {ended:.0f} MiB"
    assert "Traceback" not in server.log(), server.log()[-5000:]
