"""Benchmark the training-job API of `forklift serve`.

    .venv/bin/python bench/api.py [--jobs 10000] [--clients 8] [--seconds 5] [--runs 5]

1. DescribeTrainingJob and ListTrainingJobs requests per second with --jobs jobs in the store, from
   --clients boto3 clients in parallel threads.
2. Create-to-`Training` latency of a job whose image is already cached, against a bare `runc run`
   of the same image's rootfs (both run /bin/true), printed as a ratio. Needs root and runc.

Everything lives in a temporary FORKLIFT_HOME with its own TLS registry; nothing is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

from forklift.config import Settings
from forklift.control.models import TrainingJobRow
from forklift.control.store import JobStore
from forklift.devregistry import LocalRegistry, create_pki, install_ca

CREDS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
VPC = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}


def seed(home: Path, count: int) -> list[str]:
    store = JobStore(f"sqlite:///{home / 'forklift.db'}")
    now = time.time() - count
    names = [f"bench-job-{i:05d}" for i in range(count)]
    request = {"AlgorithmSpecification": {"TrainingImage": "example.com/x:1", "TrainingInputMode": "File"},
               "RoleArn": "arn:aws:iam::123456789012:role/R", "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
               "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}}
    with store._sessions.begin() as session:
        for i, name in enumerate(names):
            t = now + i
            session.add(TrainingJobRow(
                name=name, arn=f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}",
                request={**request, "TrainingJobName": name}, status="Completed", secondary_status="Completed",
                transitions=[{"Status": "Completed", "StartTime": t, "EndTime": t, "StatusMessage": "done"}],
                created_at=t, modified_at=t, training_start=t, training_end=t + 1, phase="done", seq=i + 1,
                model_artifacts=f"s3://b/o/{name}/output/model.tar.gz"))
    return names


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, FORKLIFT_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "forklift", "serve", "--port", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(home / "serve.log", "w"))
    for _ in range(600):
        try:
            return proc, json.loads((home / "server.json").read_text())["url"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise SystemExit("forklift serve did not start")


def client(url: str):
    return boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=4), **CREDS)


def throughput(url: str, clients: int, seconds: float, call) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds
    sms = [client(url) for _ in range(clients)]

    def work(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            call(sms[i], rng)
            counts[i] += 1
    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def push_image(home: Path, registry: str) -> str:
    from forklift.images.build import BuildOptions, build
    from forklift.images.imagestore import ImageStore
    from forklift.images.push import push_sync, source_from_store

    root = home.parent / "busybox-rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    store = ImageStore(Settings(home=home))
    ref = f"{registry}/bench/busybox:1"
    image = build(store, [root], tag=ref, options=BuildOptions(entrypoint=["/bin/true"]))
    push_sync(source_from_store(store, image.reference), ref, store)
    return ref


def create_to_training(sm, image: str, runs: int) -> list[float]:
    latencies = []
    for i in range(runs + 1):  # the first run pulls and unpacks: not measured
        name = f"latency-{i}-{os.getpid()}"
        started = time.perf_counter()
        sm.create_training_job(
            TrainingJobName=name, RoleArn="arn:aws:iam::123456789012:role/R", VpcConfig=VPC,
            AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File",
                                    "ContainerEntrypoint": ["/bin/sh", "-c", "sleep 1"],
                                    "TrainingImageConfig": {"TrainingRepositoryAccessMode": "Vpc"}},
            OutputDataConfig={"S3OutputPath": "s3://bench-out/models"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})
        while True:
            job = sm.describe_training_job(TrainingJobName=name)
            if job["SecondaryStatus"] in ("Training", "Uploading", "Completed", "Failed"):
                break
            time.sleep(0.005)
        if job["TrainingJobStatus"] == "Failed":
            raise SystemExit(f"latency job failed: {job['FailureReason']}")
        if i:
            latencies.append(time.perf_counter() - started)
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name,
                                                               WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return latencies


def bare_runc(home: Path, runs: int) -> list[float]:
    rootfs = max((p for p in (home / "rootfs").rglob("bin") if (p / "busybox").exists()), key=lambda p: len(str(p)))
    bundle = home / "bare-bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--rootless"] if os.geteuid() else ["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"] = {"path": str(rootfs.parent), "readonly": True}
    spec["process"].update(args=["/bin/true"], terminal=False)
    (bundle / "config.json").write_text(json.dumps(spec))
    times = []
    for i in range(runs):
        started = time.perf_counter()
        subprocess.run(["runc", "run", f"bench-bare-{os.getpid()}-{i}"], cwd=bundle, check=True,
                       stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-"))
    home = work / "home"
    home.mkdir()
    pki = create_pki(work / "pki")
    registry = LocalRegistry(work / "registry", pki)
    proc = None
    try:
        registry.start()
        install_ca(pki, home / "certs.d", registry.address)
        (home / "buckets" / "bench-out").mkdir(parents=True)
        names = seed(home, args.jobs)
        proc, url = start_server(home)
        client(url).list_training_jobs()  # warm up
        describe = throughput(url, args.clients, args.seconds,
                              lambda sm, rng: sm.describe_training_job(TrainingJobName=rng.choice(names)))
        listing = throughput(url, args.clients, args.seconds,
                             lambda sm, rng: sm.list_training_jobs(MaxResults=100, SortOrder="Descending"))
        print(f"jobs in store: {args.jobs}, parallel boto3 clients: {args.clients}")
        print(f"DescribeTrainingJob: {describe:8.1f} requests/s")
        print(f"ListTrainingJobs (100 per page): {listing:8.1f} requests/s")
        image = push_image(home, registry.address)
        latency = create_to_training(client(url), image, args.runs)
        bare = bare_runc(home, args.runs)
        api_ms, bare_ms = statistics.median(latency) * 1000, statistics.median(bare) * 1000
        print(f"create -> Training, cached image (median of {args.runs}): {api_ms:8.1f} ms")
        print(f"bare `runc run` of the same rootfs (median of {args.runs}): {bare_ms:8.1f} ms")
        print(f"ratio: {api_ms / bare_ms:.1f}x")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
