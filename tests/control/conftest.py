"""Training-job fixtures: one real `forklift serve` subprocess (its own FORKLIFT_HOME, trusting the
test CA), training images pushed to the TLS registries, credentials-provider functions registered
with the real CLI, and helpers to create jobs with boto3 and wait for them.

The server is shared by the module's tests (the image pull is paid once); every container a job
started is removed at the end, whatever happened.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from forklift.config import Settings
from forklift.credentials import Credentials, StaticKeychain
from forklift.devregistry import install_ca
from forklift.images.build import BuildOptions, build
from forklift.images.local import ImageStore
from forklift.images.push import push_sync, source_from_store

HERE = Path(__file__).parent
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "AKIDFORKLIFTTEST", "aws_secret_access_key": "forklift-test-secret"}
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60)
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
VPC = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0",
                                                                  "subnet-0123456789abcdef1"]}

TRAIN_PY = r'''
import glob, json, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (print("got SIGTERM", flush=True), sys.exit(143)))
print("argv", sys.argv[1:], flush=True)
hp = json.load(open("/opt/ml/input/config/hyperparameters.json"))
rc = json.load(open("/opt/ml/input/config/resourceconfig.json"))
rows = []
for path in sorted(glob.glob("/opt/ml/input/data/training/*.csv")):
    for line in open(path):
        if line.strip():
            rows.append([float(x) for x in line.split(",")])
mean = [sum(c) / len(rows) for c in zip(*rows)] if rows else []
model = {"rows": len(rows), "mean": mean, "hyperparameters": hp, "host": rc["current_host"],
         "job": os.environ.get("TRAINING_JOB_NAME")}
json.dump(model, open("/opt/ml/model/model.json", "w"))
os.makedirs("/opt/ml/output/data", exist_ok=True)
open("/opt/ml/output/data/metrics.txt", "w").write("rows=%d\n" % len(rows))
print("trained on", len(rows), "rows", flush=True)
time.sleep(float(hp.get("sleep", "0")))
'''


def _runtime_conftest():
    spec = importlib.util.spec_from_file_location("runtime_fixtures", HERE.parent / "runtime" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Images:
    python: str  # private basic-auth registry, entrypoint python3 train.py
    busybox: str  # private basic-auth registry, scripts given as ContainerEntrypoint
    python_digest: str


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen | None

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, config=NO_RETRY, **CREDENTIALS)

    def env(self) -> dict[str, str]:
        return dict(os.environ, FORKLIFT_HOME=str(self.home), AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
                    AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"], AWS_DEFAULT_REGION=REGION)

    def forklift(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "forklift", *args], capture_output=True, text=True,
                              env=self.env(), timeout=timeout)

    def start(self) -> Server:
        (self.home / "server.json").unlink(missing_ok=True)
        self.process = subprocess.Popen([sys.executable, "-m", "forklift", "serve", "--port", "0"],
                                        env=self.env(), stdout=subprocess.DEVNULL,
                                        stderr=open(self.home / "serve.log", "a"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"forklift serve exited: {(self.home / 'serve.log').read_text()[-3000:]}")
            try:
                self.url = json.loads((self.home / "server.json").read_text())["url"]
                return self
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise RuntimeError("forklift serve did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return (self.home / "serve.log").read_text()


@pytest.fixture(scope="session")
def training_images(tmp_path_factory, pki, basic_registry, busybox_rootfs) -> Images:
    rt = _runtime_conftest()
    pyslim = rt._cached("pyslim", rt._digest("/usr/bin/busybox", rt.PY, "/lib/x86_64-linux-gnu/libc.so.6"),
                        rt._build_pyslim)
    home = tmp_path_factory.mktemp("control-image-home")
    install_ca(pki, home / "certs.d", basic_registry.address)
    store = ImageStore(Settings(home=home))
    code = tmp_path_factory.mktemp("train-code")
    (code / "opt" / "program").mkdir(parents=True)
    (code / "opt" / "program" / "train.py").write_text(TRAIN_PY)
    keychain = StaticKeychain(Credentials(basic_registry.username, basic_registry.password))
    python_ref = f"{basic_registry.address}/docker-local/my-training-image:1.0"
    python = build(store, [pyslim, code], tag=python_ref,
                   options=BuildOptions(entrypoint=["python3", "/opt/program/train.py"]))
    push_sync(source_from_store(store, python.reference), python_ref, store, keychain=keychain)
    busybox_ref = f"{basic_registry.address}/docker-local/busybox-train:1"
    busybox = build(store, [busybox_rootfs], tag=busybox_ref, options=BuildOptions(cmd=["/bin/sh"]))
    push_sync(source_from_store(store, busybox.reference), busybox_ref, store, keychain=keychain)
    return Images(python_ref, busybox_ref, python.digest)


def provider_source(username: str, password: str) -> str:
    return f"def handler(event, context):\n    return {{'Credentials': {{'Username': {username!r}, " \
           f"'Password': {password!r}}}}}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, token_registry, training_images) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("control-serve-home")
    for registry in (basic_registry, token_registry):
        install_ca(pki, home / "certs.d", registry.address)
    (home / "config.toml").write_text("stop_grace_seconds = 5\n")
    running = Server("", home, None)
    for name, (user, password) in {"registry-creds": (basic_registry.username, basic_registry.password),
                                   "wrong-creds": (basic_registry.username, "not-the-password")}.items():
        handler = home / f"{name}.py"
        handler.write_text(provider_source(user, password))
        result = running.forklift("functions", "register", name, "--handler", str(handler))
        assert result.returncode == 0, result.stderr
    (home / "buckets" / "your-training-data-bucket" / "training-data-folder").mkdir(parents=True)
    (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
    running.start()
    yield running
    running.stop()
    _remove_containers(home)


def _remove_containers(home: Path) -> None:
    from forklift.runtime import RuncRuntime

    runtime = RuncRuntime()
    for job in (home / "jobs").glob("*"):
        meta = job / "container" / "container.json"
        if meta.exists():
            handle = runtime.adopt(json.loads(meta.read_text())["name"])
            if handle is not None:
                handle.stop(grace=0.5)


@pytest.fixture
def sagemaker(server: Server):
    return server.client("sagemaker")


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:000000000000:function:{name}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def job_request(name: str, image: str, *, provider: str | None = "registry-creds", **overrides) -> dict:
    config = {"TrainingRepositoryAccessMode": "Vpc"}
    if provider:
        config["TrainingRepositoryAuthConfig"] = {"TrainingRepositoryCredentialsProviderArn": function_arn(provider)}
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingImageConfig": config,
                                   "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://your-output-data-bucket/model-folder"},
        "ResourceConfig": {"InstanceType": "ml.m4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "VpcConfig": VPC,
        "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def busybox_job(name: str, image: str, script: str, **overrides) -> dict:
    request = job_request(name, image, **overrides)
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/bin/sh", "-c", script]
    return request


def wait_for(sagemaker, name: str, until=("Completed", "Failed", "Stopped"), timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in until or job["SecondaryStatus"] in until:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {name} still {job['TrainingJobStatus']}/{job['SecondaryStatus']}: {job}")
        time.sleep(0.2)
