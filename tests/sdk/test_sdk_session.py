"""The SageMaker Python SDK v2's everyday session and the AWS CLI v1, unchanged, against a real
`forklift serve` on its embedded store (no external S3): the default bucket, `upload_data`, `fit` with
and without `output_path`, metrics (`TrainingJobAnalytics`), `Estimator.attach`, script mode for
training and for serving (`entry_point` + `source_dir`), deploy and predict, `S3Downloader`; then
`aws s3 cp --recursive`, `aws s3 sync` and `aws s3 ls`."""

from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path

from sdk_support import PROVIDER, ROLE, SdkRun

from forklift.demo.samples import training_csv

USER_TRAIN_PY = '''\
import argparse, glob, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
rows = sum(1 for path in glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAINING"], "*.csv"))
           for line in open(path) if line.strip())
for epoch in range(1, args.epochs + 1):
    print(f"epoch={epoch} loss={1.0 / epoch:.4f}", flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "user-model.json"), "w") as f:
    json.dump({"epochs": args.epochs, "rows": rows}, f)
print("script mode trained on", rows, "rows", flush=True)
'''

USER_INFERENCE_PY = '''\
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "user-model.json")) as f:
        return json.load(f)

def predict_fn(rows, model):
    return {"script": "inference.py", "epochs": model["epochs"], "trained_rows": model["rows"], "rows": len(rows)}
'''

SDK_FLOW = '''
import json, sys, time
import boto3, sagemaker
from sagemaker.analytics import TrainingJobAnalytics
from sagemaker.estimator import Estimator
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.s3 import S3Downloader
from sagemaker.serializers import CSVSerializer
from sagemaker.sklearn.estimator import SKLearn

image, role, provider, data_dir, source_dir = sys.argv[1:6]
vpc = {"Subnets": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}
access = dict(training_repository_access_mode="Vpc", training_repository_credentials_provider_arn=provider,
              subnets=vpc["Subnets"], security_group_ids=vpc["SecurityGroupIds"])
session = sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"), default_bucket="sdk-default-bucket")
sm = session.sagemaker_client
out = {"default_bucket": session.default_bucket()}

def finished(job_name):
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=job_name, WaiterConfig={"Delay": 1})
    return sm.describe_training_job(TrainingJobName=job_name)

inputs = session.upload_data(data_dir, key_prefix="sdk/training")
out["inputs"] = inputs
out["uploaded"] = sorted(S3Downloader.list(inputs, sagemaker_session=session))

# No output_path: the model goes to the default bucket.
builtin = Estimator(image_uri=image, role=role, instance_count=1, instance_type="ml.m5.large",
                    metric_definitions=[{"Name": "train:accuracy", "Regex": "train accuracy: ([0-9.]+)"}],
                    sagemaker_session=session, **access)
builtin.fit({"training": inputs}, wait=False)
described = finished(builtin.latest_training_job.name)
out["builtin"] = {"status": described["TrainingJobStatus"], "failure": described.get("FailureReason"),
                  "model_data": builtin.model_data,
                  "final_metrics": {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}}
frame = TrainingJobAnalytics(builtin.latest_training_job.name, metric_names=["train:accuracy"],
                             sagemaker_session=session).dataframe()
out["analytics"] = frame.to_dict(orient="records")

attached = Estimator.attach(builtin.latest_training_job.name, sagemaker_session=session)
out["attached"] = {"image_uri": attached.image_uri, "role": attached.role, "instance_type": attached.instance_type,
                   "output_path": attached.output_path, "model_data": attached.model_data}

# Script mode, with an output_path: the SDK uploads sourcedir.tar.gz and names it in the hyperparameters.
script = SKLearn(entry_point="train.py", source_dir=source_dir, image_uri=image, role=role, instance_count=1,
                 instance_type="ml.m5.large", framework_version="1.2-1", hyperparameters={"epochs": 3},
                 output_path="s3://sdk-default-bucket/script-output",
                 metric_definitions=[{"Name": "loss", "Regex": "loss=([0-9.]+)"}], sagemaker_session=session, **access)
script.fit({"training": inputs}, wait=False)
described = finished(script.latest_training_job.name)
out["script"] = {"status": described["TrainingJobStatus"], "failure": described.get("FailureReason"),
                 "model_data": script.model_data,
                 "final_metrics": {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])},
                 "submit_directory": described["HyperParameters"].get("sagemaker_submit_directory")}
session.logs_for_job(script.latest_training_job.name, wait=False)

# Serving the script-mode model through the user's inference.py (the SDK repacks it into model.tar.gz).
model = Model(image_uri=image, model_data=script.model_data, role=role, entry_point="inference.py",
              source_dir=source_dir, vpc_config=vpc, sagemaker_session=session,
              image_config={"RepositoryAccessMode": "Vpc",
                            "RepositoryAuthConfig": {"RepositoryCredentialsProviderArn": provider}})
model.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-script-endpoint", wait=False)
sm.get_waiter("endpoint_in_service").wait(EndpointName="sdk-script-endpoint", WaiterConfig={"Delay": 1})
predictor = Predictor("sdk-script-endpoint", sagemaker_session=session, serializer=CSVSerializer())
out["prediction"] = json.loads(predictor.predict("1.0,1.0\\n4.0,3.0\\n"))
predictor.delete_endpoint()
print(json.dumps(out, default=str))
'''


def test_the_sdk_v2_session_trains_tracks_and_serves_on_the_embedded_store(sdk: SdkRun, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text(training_csv())
    (data / "more.csv").write_text(training_csv(rows=20, seed=3))
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(USER_TRAIN_PY)
    (source / "inference.py").write_text(USER_INFERENCE_PY)

    out = sdk.python(SDK_FLOW, sdk.image, ROLE, PROVIDER, str(data), str(source), cwd=tmp_path)

    assert out["default_bucket"] == "sdk-default-bucket"
    assert (sdk.server.home / "buckets" / "sdk-default-bucket").is_dir()  # where `forklift buckets` keeps it
    assert out["inputs"] == "s3://sdk-default-bucket/sdk/training"
    assert out["uploaded"] == ["s3://sdk-default-bucket/sdk/training/more.csv",
                               "s3://sdk-default-bucket/sdk/training/train.csv"]

    builtin = out["builtin"]
    assert builtin["status"] == "Completed", builtin["failure"]
    assert builtin["model_data"].startswith("s3://sdk-default-bucket/") and builtin["model_data"].endswith(
        "/output/model.tar.gz")
    assert builtin["final_metrics"] == {"train:accuracy": 1.0}
    assert [row["metric_name"] for row in out["analytics"]] == ["train:accuracy"]
    assert out["analytics"][0]["value"] == 1.0
    assert out["attached"] == {"image_uri": sdk.image, "role": ROLE, "instance_type": "ml.m5.large",
                               "output_path": "s3://sdk-default-bucket/", "model_data": builtin["model_data"]}

    script = out["script"]
    assert script["status"] == "Completed", script["failure"]
    # What the user sent is what Describe shows; the container read the code forklift staged.
    assert json.loads(script["submit_directory"]).endswith("/source/sourcedir.tar.gz")
    assert script["final_metrics"] == {"loss": 0.3333}
    assert script["model_data"].startswith("s3://sdk-default-bucket/script-output/")

    assert out["prediction"] == {"predictions": {"script": "inference.py", "epochs": 3, "trained_rows": 220,
                                                 "rows": 2}}


def test_the_aws_cli_copies_syncs_and_lists_on_the_embedded_store(sdk: SdkRun, tmp_path: Path):
    tree = tmp_path / "tree"
    (tree / "nested" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "nested" / "b.csv").write_text(training_csv(rows=10))
    # past the CLI's multipart threshold (8 MiB)
    (tree / "nested" / "deeper" / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    sdk.aws("s3", "mb", "s3://cli-bucket")
    sdk.aws("s3", "cp", "--recursive", str(tree), "s3://cli-bucket/tree/")
    listing = sdk.aws("s3", "ls", "--recursive", "s3://cli-bucket/tree/").stdout
    assert sorted(line.split()[-1] for line in listing.splitlines()) == [
        "tree/a.txt", "tree/nested/b.csv", "tree/nested/deeper/big.bin"]
    assert (sdk.server.home / "buckets" / "cli-bucket" / "tree" / "nested" / "deeper" / "big.bin").read_bytes() == (
        tree / "nested" / "deeper" / "big.bin").read_bytes()

    copy = tmp_path / "copy"
    sdk.aws("s3", "sync", "s3://cli-bucket/tree/", str(copy))
    assert not filecmp.dircmp(tree, copy).diff_files and sorted(p.name for p in copy.rglob("*") if p.is_file()) == [
        "a.txt", "b.csv", "big.bin"]
    again = sdk.aws("s3", "sync", str(tree), "s3://cli-bucket/tree/")
    assert "upload:" not in again.stdout  # nothing changed: sync compares sizes and times and copies nothing
    (tree / "a.txt").write_text("alpha, changed\n")
    changed = sdk.aws("s3", "sync", str(tree), "s3://cli-bucket/tree/")
    assert changed.stdout.count("upload:") == 1 and "tree/a.txt" in changed.stdout
    sdk.aws("s3", "rm", "--recursive", "s3://cli-bucket/tree/")
    assert sdk.aws("s3", "ls", "--recursive", "s3://cli-bucket/").stdout.strip() == ""
