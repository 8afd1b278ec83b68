"""`kill -9` of a real `forklift serve` at random moments of endpoints' and training jobs' lives, then a
restart: every resource ends in its correct state, and nothing it held outlives it on the host.

The kill moments come from one seed (FORKLIFT_CRASH_SEED, else a fresh one), printed with any
failure; FORKLIFT_CRASH_KILLS scales how many kills each test makes (default: what fits in `make
test`). After each restart the host is read raw (`fixtures.hostcheck`: runc, `ip netns`,
/proc/mounts, cgroups, the runtime's index and lease table, FORKLIFT_HOME) and by `forklift doctor`.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from botocore.exceptions import ClientError
from inference_support import ROLE, VPC, create_config, create_model, function_arn, prepare_home, unique

from fixtures import hostcheck
from fixtures.serve import ServeProcess, remove_containers

SEED = int(os.environ.get("FORKLIFT_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
SCALE = float(os.environ.get("FORKLIFT_CRASH_KILLS") or 1)
SETTLE = 60.0  # seconds an endpoint or a job may take to reach its state after a restart


@pytest.fixture(scope="module")
def crashing(tmp_path_factory, pki, basic_registry, inference_image) -> Iterator[ServeProcess]:
    home = tmp_path_factory.mktemp("crash-home")
    server = prepare_home(home, pki, basic_registry)
    (home / "buckets" / "output").mkdir(parents=True)
    server.start()
    yield server
    try:
        kill(server)
        server.start()
        sm = server.client("sagemaker")
        for endpoint in sm.list_endpoints(MaxResults=100)["Endpoints"]:
            sm.delete_endpoint(EndpointName=endpoint["EndpointName"])
    finally:
        server.stop()
        remove_containers(home)


def kill(server: ServeProcess) -> None:
    if server.process and server.process.poll() is None:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()


def failing(seed: int, step: str) -> str:
    return f"seed {seed} (rerun with FORKLIFT_CRASH_SEED={seed}), {step}"


# -- what the server is asked to do ------------------------------------------------------------
def wait(check: Callable[[], bool], what: str, timeout: float = SETTLE, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(poll)


def endpoint_status(sm, name: str) -> str | None:
    try:
        return sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
    except ClientError as exc:
        if "Could not find endpoint" in str(exc):
            return None
        raise


def job_request(name: str, image: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": image, "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "-c", "import time; time.sleep(1.5); print('trained')"],
            "TrainingImageConfig": {"TrainingRepositoryAccessMode": "Vpc", "TrainingRepositoryAuthConfig": {
                "TrainingRepositoryCredentialsProviderArn": function_arn("registry-creds")}}},
        "RoleArn": ROLE, "VpcConfig": VPC,
        "OutputDataConfig": {"S3OutputPath": "s3://output/models"},
        "ResourceConfig": {"InstanceType": "ml.m4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


class Scenario:
    """One endpoint's life (create; for a full one also update, new weights and a heal) and delete,
    and, for a full one, a training job,
    driven on a thread from `offset` seconds on until the server dies under it."""

    def __init__(self, server: ServeProcess, image: str, configs: tuple[str, str], full: bool, offset: float):
        self.server, self.image, self.configs, self.full, self.offset = server, image, configs, full, offset
        self.endpoint, self.job = unique("crash-ep"), unique("crash-job")
        self.steps: list[str] = []
        self.thread = threading.Thread(target=self._drive, daemon=True)

    def __str__(self) -> str:
        return f"{self.endpoint} in {self.steps[-1] if self.steps else 'nothing yet'}"

    def _drive(self) -> None:
        sm = self.server.client("sagemaker")
        try:
            time.sleep(self.offset)
            if self.full:
                self.steps.append("CreateTrainingJob")
                sm.create_training_job(**job_request(self.job, self.image))
            self.steps.append("CreateEndpoint")
            sm.create_endpoint(EndpointName=self.endpoint, EndpointConfigName=self.configs[0])
            wait(lambda: endpoint_status(sm, self.endpoint) == "InService", "InService")
            if self.full:
                self.steps.append("UpdateEndpoint")
                sm.update_endpoint(EndpointName=self.endpoint, EndpointConfigName=self.configs[1])
                wait(lambda: endpoint_status(sm, self.endpoint) == "InService", "InService after the update")
                self.steps.append("UpdateEndpointWeightsAndCapacities")
                sm.update_endpoint_weights_and_capacities(EndpointName=self.endpoint, DesiredWeightsAndCapacities=[
                    {"VariantName": "AllTraffic", "DesiredWeight": 2.0, "DesiredInstanceCount": 2}])
                wait(lambda: endpoint_status(sm, self.endpoint) == "InService", "InService with new weights")
                self.steps.append("heal")  # a sick instance (its /ping answers 503 from now on) is replaced
                self.server.client("sagemaker-runtime").invoke_endpoint(EndpointName=self.endpoint, Body=b"sick",
                                                                       ContentType="application/json")
                time.sleep(2.5)
            self.steps.append("DeleteEndpoint")
            sm.delete_endpoint(EndpointName=self.endpoint)
            wait(lambda: endpoint_status(sm, self.endpoint) is None, "deleted")
            self.steps.append("done")
        except Exception:  # noqa: BLE001 - the server was killed under it: what matters is what follows
            pass


def settle_and_check(server: ServeProcess, scenarios: list[Scenario], where: str) -> None:
    """After the restart: each resource reaches a correct state, the host holds only what live ones own."""
    sm = server.client("sagemaker")
    serving: dict[str, int] = {}
    for scenario in scenarios:
        wait(lambda s=scenario: endpoint_status(sm, s.endpoint) not in ("Creating", "Updating", "Deleting"),
             f"{where}: endpoint {scenario} settled")
        status = endpoint_status(sm, scenario.endpoint)
        # None: never created, or deleted; a kill never leaves one Failed
        assert status in (None, "InService"), f"{where}: endpoint {scenario} is {status}: " \
            f"{sm.describe_endpoint(EndpointName=scenario.endpoint).get('FailureReason')}"
        if status == "InService":
            variants = sm.describe_endpoint(EndpointName=scenario.endpoint)["ProductionVariants"]
            serving[scenario.endpoint] = sum(v.get("CurrentInstanceCount", 0) for v in variants)

    def instances() -> list[str]:
        return sorted(labels.get("forklift.endpoint", "?") for cid, labels in hostcheck.running(server.home).items()
                      if "forklift.training-job" not in labels)
    expected = sorted(name for name, count in serving.items() for _ in range(count))
    wait(lambda: instances() == expected, f"{where}: the containers of live endpoints alone running "
         f"({expected}), not {instances()}")
    for name in serving:
        sm.delete_endpoint(EndpointName=name)
    for scenario in scenarios:
        wait(lambda s=scenario: endpoint_status(sm, s.endpoint) is None, f"{where}: endpoint {scenario} deleted")
        if "CreateTrainingJob" in scenario.steps:
            wait(lambda s=scenario: _job_ended(sm, s.job), f"{where}: job of {scenario} ended")
            job = _job(sm, scenario.job)
            gone = "was gone when the forklift server restarted" in (job or {}).get("FailureReason", "")
            assert job is None or job["TrainingJobStatus"] == "Completed" or gone, f"{where}: job {job}"
    wait(lambda: not hostcheck.running(server.home), f"{where}: no container left running, not "
         f"{sorted(hostcheck.running(server.home))}")
    residue = _settled_residue(server)
    assert residue == [], f"{where}: the host still holds {residue}"
    doctor = server.forklift("doctor")
    # Namespaces and leases are judged machine-wide and name no home: one the kills left names none
    # either, so every such line counts (doctor leaves younger ones unjudged; hostcheck.residue, read
    # above, counts every namespace no lease names).
    machine_wide = ("network namespace", "network lease")
    mine = [line for line in doctor.stdout.splitlines()
            if str(server.home) in line or os.path.realpath(server.home) in line or line.startswith(machine_wide)]
    assert mine == [], f"{where}: forklift doctor found {mine}"


def _job(sm, name: str) -> dict | None:
    try:
        return sm.describe_training_job(TrainingJobName=name)
    except ClientError:
        return None  # never created: the kill came first


def _job_ended(sm, name: str) -> bool:
    job = _job(sm, name)
    return job is None or job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped")


def _settled_residue(server: ServeProcess) -> list[str]:
    """Supervisors release a container's resources a moment after it ends: give them that moment."""
    deadline = time.monotonic() + 15
    while (found := hostcheck.residue(server.home)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return found


def kill_at_random(server: ServeProcess, image: str, rng: random.Random, rounds: int, parallel: int,
                   full: bool, window: float) -> None:
    """`rounds` kills; in each, `parallel` scenarios started at random offsets, so that one kill lands
    at a different moment of each."""
    sm = server.client("sagemaker")
    models = (create_model(sm, server, image), create_model(sm, server, image, version="v2"))
    configs = [(create_config(sm, [("AllTraffic", models[0], 1, 1.0)]),
                create_config(sm, [("AllTraffic", models[1], 1, 1.0)])) for _ in range(parallel)]
    for round_ in range(rounds):
        scenarios = [Scenario(server, image, configs[i], full, rng.uniform(0, window / 2)) for i in range(parallel)]
        delay = rng.uniform(0, window)
        for scenario in scenarios:
            scenario.thread.start()
        time.sleep(delay)
        kill(server)
        for scenario in scenarios:
            scenario.thread.join(30)
        where = failing(SEED, f"kill {round_ + 1}/{rounds} at {delay:.2f} s, "
                              f"with {', '.join(str(s) for s in scenarios)}")
        server.start()
        settle_and_check(server, scenarios, where)


def test_kills_during_endpoint_create_and_delete_leave_nothing(crashing, inference_image):
    """Many cheap kill points: endpoints created and deleted, the server killed somewhere in between."""
    kill_at_random(crashing, inference_image, random.Random(SEED), max(1, int(6 * SCALE)), parallel=4,
                   full=False, window=5.0)


def test_kills_through_an_endpoints_life_and_a_training_job_leave_nothing(crashing, inference_image):
    """Fuller rounds: training jobs, then endpoints' create, update, weight change and delete."""
    kill_at_random(crashing, inference_image, random.Random(SEED + 1), max(1, int(3 * SCALE)), parallel=2,
                   full=True, window=14.0)


def _starting(home, name: str) -> Callable[[], bool]:
    """True once the endpoint's first instance container's supervisor is being started."""
    return lambda: any((home / "endpoints" / name / "instances").glob("*/supervisor.log"))


@pytest.mark.parametrize("moment", ["0.2 s after CreateEndpoint", "as its container starts"])
def test_kill_just_after_create_endpoint_leaves_nothing_after_delete(crashing, inference_image, moment):
    """The reported case: `kill -9` 0.2 s after CreateEndpoint (and, to hit the moment itself, as the
    instance's container is being started), then DeleteEndpoint and a server stop: nothing is left."""
    sm = crashing.client("sagemaker")
    model = create_model(sm, crashing, inference_image)
    name = unique("crash-ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("AllTraffic", model, 1, 1.0)]))
    if moment == "as its container starts":
        wait(_starting(crashing.home, name), "the instance's container being started", timeout=30, poll=0.005)
    else:
        time.sleep(0.2)
    kill(crashing)
    crashing.start()
    sm = crashing.client("sagemaker")
    wait(lambda: endpoint_status(sm, name) != "Creating", f"endpoint {name} settled")
    sm.delete_endpoint(EndpointName=name)
    wait(lambda: endpoint_status(sm, name) is None, f"endpoint {name} deleted")
    crashing.stop()
    try:
        residue = _settled_residue(crashing)
        print(f"kill {moment}, DeleteEndpoint, server stopped: the host holds {residue or 'nothing'}")
        assert residue == [], f"kill {moment}: {residue}"
    finally:
        crashing.start()
