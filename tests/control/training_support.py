"""Helpers for the training-job tests: the training script, job requests, waiting for a job."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fixtures.kubeemulator import CLAIM, NAMESPACE
from fixtures.serve import ROLE, VPC, ServeProcess, function_arn, unique  # noqa: F401  (re-exported for the tests)
from forklift.devregistry import install_ca

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


@dataclass
class Images:
    python: str  # private basic-auth registry, entrypoint python3 train.py
    busybox: str  # private basic-auth registry, scripts given as ContainerEntrypoint
    python_digest: str


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


def kube_training_server(home: Path, pki, basic_registry, emulator) -> ServeProcess:
    """A `forklift serve --runtime kubernetes` on `home` against the Kubernetes API stand-in, trusting
    the test CA, with the provider function `registry-creds` and the output bucket (not started)."""
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text(f'stop_grace_seconds = 5\nruntime = "kubernetes"\n[kubernetes]\n'
                                      f'namespace = "{NAMESPACE}"\nvolume_claim = "{CLAIM}"\n')
    running = ServeProcess(home, serve_args=("--kubeconfig", str(emulator.kubeconfig(home / "kubeconfig"))))
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
    return running
