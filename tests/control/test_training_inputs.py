"""What the container sees: config files, File / FastFile (read-only) / Pipe channels, ManifestFile,
ContainerArguments, Environment and the job's identity."""

from __future__ import annotations

import json
import tarfile

from training_support import busybox_job, unique, wait_for

# Each command is one ContainerArguments entry (the model allows 256 characters each); the
# entrypoint runs them in turn.
ENTRYPOINT = ["/bin/sh", "-c", 'set -e; cd /opt/ml/model; for c in "$@"; do eval "$c"; done', "sh"]
COMMANDS = [
    "cp /opt/ml/input/config/hyperparameters.json /opt/ml/input/config/inputdataconfig.json "
    "/opt/ml/input/config/resourceconfig.json .",
    "cat /opt/ml/input/data/pipe_0 > piped.txt",
    "ls /opt/ml/input/data/fast > fast.txt",
    "if touch /opt/ml/input/data/fast/new 2>/dev/null; then echo writable > fast-mode.txt; "
    "else echo read-only > fast-mode.txt; fi",
    "find /opt/ml/input/data/listed -type f | sort > listed.txt",
    'echo "$TRAINING_JOB_NAME $TRAINING_JOB_ARN $GREETING $#" > env.txt',
]


def test_channels_config_files_and_environment(server, sagemaker, training_images):
    buckets = server.home / "buckets"
    piped = buckets / "your-training-data-bucket" / "pipe-src"
    piped.mkdir(parents=True)
    (piped / "a.txt").write_text("first\n")
    (piped / "b.txt").write_text("second\n")
    fast = buckets / "your-training-data-bucket" / "fast-src"
    fast.mkdir()
    (fast / "local.csv").write_text("1\n")
    listed = buckets / "your-training-data-bucket" / "listed-src"
    (listed / "sub").mkdir(parents=True)
    for key in ("keep-1.csv", "sub/keep-2.csv", "skip.csv"):
        (listed / key).write_text(key)
    manifest = buckets / "your-training-data-bucket" / "manifest.json"
    manifest.write_text(json.dumps([{"prefix": "s3://your-training-data-bucket/listed-src/"},
                                    "keep-1.csv", "sub/keep-2.csv"]))

    def channel(name, uri, mode, data_type="S3Prefix"):
        return {"ChannelName": name, "InputMode": mode, "DataSource": {"S3DataSource": {
            "S3DataType": data_type, "S3Uri": uri, "S3DataDistributionType": "ShardedByS3Key"}}}

    name = unique("inputs")
    request = busybox_job(name, training_images.busybox, "unused", HyperParameters={"lr": "0.1", "depth": "3"},
                          Environment={"GREETING": "hello"},
                          InputDataConfig=[
                              channel("pipe", "s3://your-training-data-bucket/pipe-src/", "Pipe"),
                              channel("fast", "s3://your-training-data-bucket/fast-src/", "FastFile"),
                              channel("listed", "s3://your-training-data-bucket/manifest.json", "File",
                                      "ManifestFile")])
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ENTRYPOINT
    request["AlgorithmSpecification"]["ContainerArguments"] = COMMANDS
    sagemaker.create_training_job(**request)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    archive = server.home / "buckets" / "your-output-data-bucket" / "model-folder" / name / "output" / "model.tar.gz"
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
    assert json.loads(files["hyperparameters.json"]) == {"lr": "0.1", "depth": "3"}
    resource = json.loads(files["resourceconfig.json"])
    assert resource["current_host"] == "algo-1" and resource["hosts"] == ["algo-1"]
    channels = json.loads(files["inputdataconfig.json"])
    assert channels["pipe"]["TrainingInputMode"] == "Pipe"
    assert channels["fast"]["TrainingInputMode"] == "File"  # FastFile is reported as File
    assert channels["listed"]["S3DistributionType"] == "ShardedByS3Key"
    assert files["piped.txt"] == "first\nsecond\n"
    assert files["fast.txt"] == "local.csv\n" and files["fast-mode.txt"] == "read-only\n"
    assert files["listed.txt"].split() == ["/opt/ml/input/data/listed/keep-1.csv",
                                           "/opt/ml/input/data/listed/sub/keep-2.csv"]
    arn = f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}"
    assert files["env.txt"] == f"{name} {arn} hello {len(COMMANDS)}\n"


def test_file_uris_for_channels_and_output(server, sagemaker, training_images, host_files):
    """forklift extension: file:// works wherever SageMaker takes an S3 URI, below a file root."""
    data = host_files / "local-data"
    data.mkdir()
    (data / "rows.csv").write_text("1,2\n3,4\n")
    output = host_files / "local-output"
    output.mkdir()
    name = unique("fileuri")
    request = busybox_job(name, training_images.busybox, "cp /opt/ml/input/data/train/rows.csv /opt/ml/model/",
                          InputDataConfig=[{"ChannelName": "train", "InputMode": "FastFile", "DataSource": {
                              "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{data}"}}}],
                          OutputDataConfig={"S3OutputPath": f"file://{output}"})
    sagemaker.create_training_job(**request)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"file://{output}/{name}/output/model.tar.gz"
    with tarfile.open(output / name / "output" / "model.tar.gz") as tar:
        assert tar.extractfile("rows.csv").read() == b"1,2\n3,4\n"

    bad = busybox_job(unique("badurl"), training_images.busybox, "true",
                      OutputDataConfig={"S3OutputPath": "ftp://nowhere/x"})
    try:
        sagemaker.create_training_job(**bad)
    except sagemaker.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "ValidationException"
        assert "outputDataConfig.s3OutputPath" in error.response["Error"]["Message"]
    else:
        raise AssertionError("ftp:// was accepted")


def _refused(sagemaker, request: dict) -> str:
    try:
        sagemaker.create_training_job(**request)
    except sagemaker.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "ValidationException"
        return error.response["Error"]["Message"]
    raise AssertionError("the job was accepted")


def test_file_uris_outside_the_file_roots_are_refused(server, sagemaker, training_images, host_files, tmp_path):
    outside = tmp_path / "not-a-root"
    for mode in ("File", "FastFile", "Pipe"):
        request = busybox_job(unique("etc"), training_images.busybox, "true", InputDataConfig=[{
            "ChannelName": "train", "InputMode": mode,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file:///etc"}}}])
        message = _refused(sagemaker, request)
        assert "InputDataConfig[0].DataSource.S3DataSource.S3Uri" in message and "file:///etc" in message
        assert "file_roots" in message and "config.toml" in message
    request = busybox_job(unique("out"), training_images.busybox, "true",
                          OutputDataConfig={"S3OutputPath": f"file://{outside}"})
    message = _refused(sagemaker, request)
    assert "OutputDataConfig.S3OutputPath" in message and "file_roots" in message
    request = busybox_job(unique("ckpt"), training_images.busybox, "true",
                          CheckpointConfig={"S3Uri": f"file://{outside}/ckpt"})
    assert "CheckpointConfig.S3Uri" in _refused(sagemaker, request)
    request = busybox_job(unique("dotdot"), training_images.busybox, "true",
                          OutputDataConfig={"S3OutputPath": f"file://{host_files}/../escaped"})
    assert "file_roots" in _refused(sagemaker, request)
    (host_files / "to-etc").symlink_to("/etc")
    request = busybox_job(unique("link"), training_images.busybox, "true", InputDataConfig=[{
        "ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                "S3Uri": f"file://{host_files}/to-etc"}}}])
    assert "'to-etc' is a symbolic link" in _refused(sagemaker, request)
    assert not outside.exists()


def test_a_manifest_naming_host_files_fails_the_job(server, sagemaker, training_images):
    """The manifest is read when the job runs, so its prefix is checked then: the job fails, nothing is read."""
    manifest = server.home / "buckets" / "your-training-data-bucket" / "etc-manifest.json"
    manifest.write_text(json.dumps([{"prefix": "file:///etc/"}, "passwd"]))
    name = unique("manifest-etc")
    request = busybox_job(name, training_images.busybox, "cp /opt/ml/input/data/train/passwd /opt/ml/model/",
                          InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                              "S3DataType": "ManifestFile",
                              "S3Uri": "s3://your-training-data-bucket/etc-manifest.json"}}}])
    sagemaker.create_training_job(**request)
    job = wait_for(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "file:///etc/passwd is not under" in job["FailureReason"] and "file_roots" in job["FailureReason"]
    assert "Traceback" not in job["FailureReason"]
