"""Training containers that fight back, on a server whose FORKLIFT_HOME is a 384 MiB tmpfs and whose
config.toml bounds them small ([containers] pids_limit = 128, log_max_bytes = "4 MiB", log_files = 2;
stop_grace_seconds = 2): one that ignores SIGTERM is killed and Stopped; a fork bomb stays within its
pids limit and ends at MaxRuntimeInSeconds; one that blows up its memory fails with OutOfMemoryError;
one that writes a gigabyte of logs as fast as it can fills neither the disk nor the server's time, and
its log stream keeps its newest output."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from training_support import busybox_job, unique, wait_for

from fixtures.serve import ServeProcess, remove_containers
from fixtures.smalldisk import MiB, small_disk
from forklift.devregistry import install_ca
from forklift.runtime import RuncRuntime

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs and reading cgroups need root")
PIDS_LIMIT = 128
LOG_MAX = 4 * MiB
CONFIG = f"""stop_grace_seconds = 2
[containers]
pids_limit = {PIDS_LIMIT}
log_max_bytes = "{LOG_MAX >> 20} MiB"
log_files = 2
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, training_images):
    with small_disk(tmp_path_factory.mktemp("hostile") / "home", 384) as home:
        install_ca(pki, home / "certs.d", basic_registry.address)
        (home / "config.toml").write_text(CONFIG)
        running = ServeProcess(home)
        running.register_function("registry-creds", basic_registry.username, basic_registry.password)
        (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
        running.start()
        try:
            yield running
        finally:
            running.stop()
            remove_containers(home)


@pytest.fixture
def sagemaker(server):
    return server.client("sagemaker")


def start(sagemaker, images, prefix: str, script: str, **overrides) -> str:
    name = unique(prefix)
    sagemaker.create_training_job(**busybox_job(name, images.busybox, script, **overrides))
    return name


def used(home) -> int:
    st = os.statvfs(home)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_a_container_that_ignores_sigterm_is_killed_after_the_grace_and_stopped(server, sagemaker,
                                                                                 training_images):
    name = start(sagemaker, training_images, "ignores-term",
                 "trap 'echo got TERM, carrying on' TERM; echo started; while true; do sleep 0.2; done")
    wait_for(sagemaker, name, until=("Training",))
    while "started" not in server.forklift("jobs", "logs", name).stdout:
        time.sleep(0.2)
    sagemaker.stop_training_job(TrainingJobName=name)
    job = wait_for(sagemaker, name, timeout=60)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped"), job
    assert "got TERM, carrying on" in server.forklift("jobs", "logs", name).stdout  # it was asked, and refused
    meta = json.loads((server.home / "jobs" / name / "container" / "container.json").read_text())
    assert RuncRuntime().cli.state(meta["id"]) is None  # killed and deleted, nothing left running
    assert json.loads((server.home / "jobs" / name / "container" / "exit.json").read_text())["signal"] == 9


def test_a_fork_bomb_stays_within_the_pids_limit_and_the_job_ends(server, sagemaker, training_images):
    name = start(sagemaker, training_images, "fork-bomb", "bomb() { bomb | bomb & }; bomb; while :; do :; done",
                 StoppingCondition={"MaxRuntimeInSeconds": 6})
    wait_for(sagemaker, name, until=("Training",))
    answers = 0
    while sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress":
        answers += 1  # the server answers while the bomb goes off
        time.sleep(0.2)
    job = wait_for(sagemaker, name, timeout=90)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded"), job
    assert answers > 0
    container = server.home / "jobs" / name / "container"
    assert json.loads((container / "config.json").read_text())["linux"]["resources"]["pids"] == {"limit": PIDS_LIMIT}
    assert json.loads((container / "exit.json").read_text())["refused_forks"] > 0  # the limit held it
    meta = json.loads((container / "container.json").read_text())
    assert not os.path.exists(f"/sys/fs/cgroup/pids{meta['cgroup']}")  # every process of it is gone


def test_a_job_that_fails_at_its_pids_limit_says_so(sagemaker, training_images):
    name = start(sagemaker, training_images, "fork-fail", "bomb() { bomb | bomb & }; bomb; sleep 2; exit 7")
    job = wait_for(sagemaker, name, timeout=90)
    assert job["TrainingJobStatus"] == "Failed", job
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: the training container exited with code 7; it reached its process "
                             "limit ("), reason
    assert reason.endswith("forks or threads refused: [containers] pids_limit in config.toml)"), reason


def test_a_container_that_blows_up_its_memory_fails_with_out_of_memory(sagemaker, training_images):
    # ml.t3.medium: 4 GiB; dd fills one 4.2 GB block before it writes it
    name = start(sagemaker, training_images, "memory-bomb",
                 "dd if=/dev/zero of=/dev/null bs=4200M count=1 iflag=fullblock; echo survived",
                 ResourceConfig={"InstanceType": "ml.t3.medium"})
    job = wait_for(sagemaker, name, timeout=120)
    assert job["TrainingJobStatus"] == "Failed", job
    assert job["FailureReason"].startswith("OutOfMemoryError: the training container ran out of memory "
                                           "(the memory limit of ml.t3.medium)"), job["FailureReason"]


def test_a_gigabyte_of_logs_is_bounded_and_the_server_keeps_answering(server, sagemaker, training_images):
    script = ("yes 'flood: the same line again and again, as fast as the shell can' | head -c 1000000000; "
              "echo; echo flood done")
    before = used(server.home)
    name = start(sagemaker, training_images, "log-flood", script)
    peak, answers = [0], []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], used(server.home) - before)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        deadline = time.monotonic() + 180
        while True:
            job = sagemaker.describe_training_job(TrainingJobName=name)
            answers.append(job["TrainingJobStatus"])
            if job["TrainingJobStatus"] != "InProgress":
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
    finally:
        done.set()
        watcher.join()
    assert job["TrainingJobStatus"] == "Completed", job
    assert len(answers) > 5  # the server answered all along
    assert peak[0] < 160 * MiB, f"the flood took {peak[0] / MiB:.0f} MiB of the disk"
    stream = server.home / "jobs" / name
    kept = sum(p.stat().st_size for p in stream.glob("logs.jsonl*"))
    assert kept <= LOG_MAX + LOG_MAX // 2 + MiB, kept
    logs = server.client("logs")
    log_stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                           logStreamNamePrefix=f"{name}/")["logStreams"][0]
    last = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=log_stream["logStreamName"],
                               startFromHead=False, limit=3)["events"]
    assert last[-1]["message"] == "flood done"
    notes = logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                   logStreamNames=[log_stream["logStreamName"]], filterPattern='"of output dropped"')
    assert notes["events"] and notes["events"][0]["message"].startswith("[forklift: "), notes["events"][:1]
