"""The seed's training flow (AWS's "Adapt your training job to access images in a private Docker
registry") on a REAL Kubernetes cluster: a real `forklift serve --runtime kubernetes`, driven by
boto3 exactly as the guide does, runs each job as a Job on the cluster KUBECONFIG names.

It runs only when KUBECONFIG is set (else every test is skipped: "skipped: no cluster (set
KUBECONFIG)"), and has not been run by CI, which has no cluster. To run it:

    KUBECONFIG                     the cluster (and FORKLIFT_K8S_CONTEXT, a context of it, optional)
    FORKLIFT_K8S_NAMESPACE         the namespace forklift may create Jobs, Secrets, NetworkPolicies in
                                   (default "default")
    FORKLIFT_K8S_VOLUME_CLAIM      a ReadWriteMany PersistentVolumeClaim in that namespace
    FORKLIFT_K8S_HOME              a directory on THIS machine that is that claim's storage (its NFS
                                   export, EFS mount, ...): the server's FORKLIFT_HOME is made inside it,
                                   so the pods see what the server stages and the server packs what
                                   they write
    FORKLIFT_K8S_VOLUME_SUBPATH    where FORKLIFT_K8S_HOME lies inside the claim (default: its root)
    FORKLIFT_K8S_IMAGE             a tagged image with a POSIX shell (busybox, alpine, debian...) in a
                                   registry both this machine and the cluster's nodes can pull from
    FORKLIFT_K8S_REGISTRY_USERNAME / FORKLIFT_K8S_REGISTRY_PASSWORD
                                   that registry's credentials, if it asks for any: they are served
                                   by a provider function, as in the guide, and reach the nodes
                                   as the job's pull Secret
    FORKLIFT_K8S_REGISTRY_CA       a PEM CA this machine should trust for that registry (optional;
                                   the nodes must trust it by their own configuration)
    FORKLIFT_K8S_INSTANCE_TYPE     the jobs' instance type, whose figures the pods request (default
                                   ml.t3.medium: 2 vCPU, 4 GiB)
    FORKLIFT_K8S_TIMEOUT           seconds a job may take, pulls included (default 600)

    KUBECONFIG=~/.kube/config FORKLIFT_K8S_VOLUME_CLAIM=forklift-home FORKLIFT_K8S_HOME=/mnt/forklift \\
        FORKLIFT_K8S_IMAGE=registry.example.com/docker-local/busybox:1.36 pytest -ra tests/k8s

Each test's objects are removed at the end, whatever happened; so is the FORKLIFT_HOME it made.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import secretscan
from fixtures.serve import ROLE, VPC, ServeProcess, function_arn, unique
from forklift.kube import names
from forklift.kube.cluster import Cluster
from forklift.kube.settings import KubeSettings
from forklift.reference import parse

pytestmark = pytest.mark.k8s
REQUIRED = ("FORKLIFT_K8S_VOLUME_CLAIM", "FORKLIFT_K8S_HOME", "FORKLIFT_K8S_IMAGE")
PROVIDER = "k8s-registry-creds"
TRAIN = ('set -e; rows=$(cat /opt/ml/input/data/training/*.csv | wc -l); echo "$rows" > /opt/ml/model/rows.txt; '
         'echo "$TRAINING_JOB_NAME" > /opt/ml/model/job.txt; echo "trained on $rows rows"')


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    missing = [name for name in REQUIRED if not env(name)]
    if missing:
        pytest.skip(f"skipped: a cluster is named but {', '.join(missing)} not set "
                    "(see tests/k8s/test_k8s_training.py)")
    return Cluster(KubeSettings(namespace=env("FORKLIFT_K8S_NAMESPACE", "default"),
                                kubeconfig=os.path.expanduser(os.environ["KUBECONFIG"].split(os.pathsep)[0]),
                                context=env("FORKLIFT_K8S_CONTEXT"), volume_claim=env("FORKLIFT_K8S_VOLUME_CLAIM")))


@pytest.fixture(scope="module")
def server(cluster: Cluster) -> Iterator[ServeProcess]:
    """`forklift serve --runtime kubernetes` on a FORKLIFT_HOME of its own inside the claim's storage."""
    home = Path(os.environ["FORKLIFT_K8S_HOME"]) / f"forklift-k8s-test-{uuid.uuid4().hex[:8]}"
    subpath = "/".join(p for p in (env("FORKLIFT_K8S_VOLUME_SUBPATH", "").strip("/"), home.name) if p)
    home.mkdir(parents=True)
    registry = parse(os.environ["FORKLIFT_K8S_IMAGE"]).registry
    if env("FORKLIFT_K8S_REGISTRY_CA"):
        (home / "certs.d" / registry).mkdir(parents=True)
        shutil.copy(os.environ["FORKLIFT_K8S_REGISTRY_CA"], home / "certs.d" / registry / "ca.crt")
    (home / "config.toml").write_text(f'stop_grace_seconds = 10\nruntime = "kubernetes"\n[kubernetes]\n'
                                      f'volume_claim = "{cluster.settings.volume_claim}"\n'
                                      f'volume_subpath = "{subpath}"\n')
    args = ["--kubeconfig", str(cluster.settings.kubeconfig), "--namespace", cluster.namespace]
    if cluster.settings.context:
        args += ["--context", cluster.settings.context]
    running = ServeProcess(home, serve_args=tuple(args))
    if env("FORKLIFT_K8S_REGISTRY_PASSWORD"):
        secretscan.register("the real cluster's registry password", os.environ["FORKLIFT_K8S_REGISTRY_PASSWORD"],
                            user=env("FORKLIFT_K8S_REGISTRY_USERNAME"))
        running.register_function(PROVIDER, os.environ.get("FORKLIFT_K8S_REGISTRY_USERNAME", ""),
                                  os.environ["FORKLIFT_K8S_REGISTRY_PASSWORD"])
        (home / f"{PROVIDER}.py").unlink()  # registered: its code is in the database now
    data = home / "buckets" / "your-training-data-bucket" / "training-data-folder"
    data.mkdir(parents=True)
    (data / "train.csv").write_text("1,2\n3,4\n5,6\n")
    (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
    running.start()
    yield running
    running.stop()
    shutil.rmtree(home, ignore_errors=True)  # what a pod wrote as another user may stay behind


def labelled(cluster: Cluster, name: str) -> list[tuple[str, str]]:
    """(kind, name) of every object carrying the job's label, listed with the client itself: forklift's
    Cluster may not list Secrets (kube.cluster.PERMISSIONS), the test's kubeconfig may."""
    selector = f"{names.TRAINING_JOB}={name}"
    listings = {"Job": cluster.batch.list_namespaced_job, "Secret": cluster.core.list_namespaced_secret,
                "NetworkPolicy": cluster.networking.list_namespaced_network_policy}
    return [(kind, obj.metadata.name) for kind, list_ in listings.items()
            for obj in list_(cluster.namespace, label_selector=selector).items if not obj.metadata.deletion_timestamp]


@pytest.fixture
def job_name(cluster: Cluster) -> Iterator[str]:
    """A fresh job name; whatever objects carry it are deleted at the end."""
    name = unique("k8s-seed")
    yield name
    for kind, obj in labelled(cluster, name):
        cluster.delete(kind, obj, grace_seconds=0)


def seed_request(name: str, script: str) -> dict:
    """The guide's create_training_job arguments, with the image and instance type of this cluster."""
    training_image_config: dict = {"TrainingRepositoryAccessMode": "Vpc"}
    if env("FORKLIFT_K8S_REGISTRY_PASSWORD"):
        training_image_config["TrainingRepositoryAuthConfig"] = {
            "TrainingRepositoryCredentialsProviderArn": function_arn(PROVIDER)}
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": os.environ["FORKLIFT_K8S_IMAGE"],
                                   "TrainingImageConfig": training_image_config, "TrainingInputMode": "File",
                                   "ContainerEntrypoint": ["/bin/sh", "-c", script]},
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataDistributionType": "FullyReplicated", "S3DataType": "S3Prefix",
            "S3Uri": "s3://your-training-data-bucket/training-data-folder"}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://your-output-data-bucket/model-folder"},
        "ResourceConfig": {"InstanceType": env("FORKLIFT_K8S_INSTANCE_TYPE", "ml.t3.medium"), "InstanceCount": 1,
                           "VolumeSizeInGB": 10},
        "VpcConfig": VPC,
        "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
    }


def wait_for(sagemaker, name: str, until=("Completed", "Failed", "Stopped")) -> dict:
    deadline = time.monotonic() + float(env("FORKLIFT_K8S_TIMEOUT", "600"))
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in until or job["SecondaryStatus"] in until:
            return job
        assert time.monotonic() < deadline, f"{name} still {job['TrainingJobStatus']}/{job['SecondaryStatus']}"
        time.sleep(2)


def left_on_cluster(cluster: Cluster, name: str) -> list[str]:
    """The job's objects still on the cluster (not counting those already being deleted)."""
    return [f"{kind}/{obj}" for kind, obj in labelled(cluster, name)]


def test_the_guides_training_job_runs_on_the_cluster(server, cluster, job_name):
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**seed_request(job_name, TRAIN))
    job = wait_for(sagemaker, job_name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert "@sha256:" in job["ResolvedTrainingImage"]
    # what the pod wrote on the claim, packed and uploaded by the server (to its embedded bucket store)
    model = server.home / "buckets" / "your-output-data-bucket" / "model-folder" / job_name / "output" / "model.tar.gz"
    with tarfile.open(model) as archive:
        assert archive.extractfile("rows.txt").read().decode().strip() == "3"
        assert archive.extractfile("job.txt").read().decode().strip() == job_name
    logs = server.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                       logStreamNamePrefix=job_name)["logStreams"][0]["logStreamName"]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)["events"]
    assert "trained on 3 rows" in [e["message"] for e in events]
    assert left_on_cluster(cluster, job_name) == []


def test_a_failure_file_written_on_the_cluster_is_the_failure_reason(server, cluster, job_name):
    sagemaker = server.client("sagemaker")
    script = "echo 'ValueError: bad data' > /opt/ml/output/failure; exit 3"
    sagemaker.create_training_job(**seed_request(job_name, script))
    job = wait_for(sagemaker, job_name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "ValueError: bad data" in job["FailureReason"]
    assert left_on_cluster(cluster, job_name) == []


def test_stop_training_job_deletes_its_objects_from_the_cluster(server, cluster, job_name):
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**seed_request(job_name, "sleep 600"))
    wait_for(sagemaker, job_name, until=("Training", "Completed", "Failed", "Stopped"))
    assert any(item.startswith("Job/") for item in left_on_cluster(cluster, job_name))
    sagemaker.stop_training_job(TrainingJobName=job_name)
    job = wait_for(sagemaker, job_name)
    assert job["TrainingJobStatus"] == "Stopped", job.get("FailureReason")
    assert left_on_cluster(cluster, job_name) == []
