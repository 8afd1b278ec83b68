"""An experiment as a SageMaker `CreateTrainingJob` request: pure data, no I/O.

How the Gradient-style options become the job (also in `forklift experiments create --help`):

- `--container`: any docker reference, normalized by `forklift.reference` (`tensorflow/tensorflow:1.5.1-gpu`
  is `docker.io/tensorflow/tensorflow:1.5.1-gpu`); Gradient's `docker.io:/org/repo` spelling is accepted too.
- `--command CMD`: `ContainerEntrypoint = ["/bin/sh", "-c", CMD]` (the image needs /bin/sh).
- `--workspace DIR`: packed to `s3://forklift-workspaces/<experiment>/code.tar.gz` and given to the job as
  the File-mode input channel `code`; the entrypoint script first unpacks
  `/opt/ml/input/data/code/code.tar.gz` into `/opt/ml/code` (needs `tar` with gzip in the image), `cd`s
  there and then runs CMD, so the workspace is the working directory.
- registry credentials: `TrainingRepositoryAuthConfig.TrainingRepositoryCredentialsProviderArn` names the
  reserved provider `forklift-secret-<id>`, which forklift resolves to the encrypted stored credentials; the
  `forklift:experiment-run` tag proves the job is this experiment's run, the only kind of job that may name
  it (`forklift.credentials.reserved`).
- every experiment uses `TrainingRepositoryAccessMode=Vpc` (SageMaker's mode for images outside its own
  registries) with a placeholder `VpcConfig`; the local runtime gives the container its own network and
  ignores the security group and subnet.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from forklift.credentials.reserved import RUN_TAG
from forklift.experiments.errors import InvalidExperiment
from forklift.reference import parse

CODE_CHANNEL = "code"
CODE_DIR = "/opt/ml/code"
CODE_ARCHIVE = "code.tar.gz"
WORKSPACE_BUCKET = "forklift-workspaces"
OUTPUT_BUCKET = "forklift-experiments"
TAG_KEY = "forklift:experiment"
PLACEHOLDER_VPC = {"SecurityGroupIds": ["sg-0f0f0f0f0f0f0f0f0"], "Subnets": ["subnet-0f0f0f0f0f0f0f0f0"]}
DEFAULT_MAX_RUNTIME = 86400
NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,55}$")  # room for a "-<run>" suffix in the job name
_GRADIENT_HOST_COLON = re.compile(r"^([A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::\d+)?):/+(.+)$")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidExperiment(f"invalid experiment name {name!r}: 1-56 letters, digits and '-', starting and ending "
                         "with a letter or digit")
    return name


def normalize_container(container: str) -> str:
    """The full reference of `container` (docker's rules), accepting Gradient's `docker.io:/org/repo`."""
    text = container.strip()
    m = _GRADIENT_HOST_COLON.match(text)
    if m:
        text = f"{m.group(1)}/{m.group(2)}"
    return str(parse(text))


def parse_pairs(values: tuple[str, ...] | list[str], what: str) -> dict[str, str]:
    """`K=V` options (`--env`, `--hyperparameter`, `--input`) as a dict; the last one of a key wins."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise InvalidExperiment(f"{what} {value!r} is not KEY=VALUE")
        pairs[key.strip()] = val
    return pairs


def entry_script(command: str, has_workspace: bool) -> str:
    """What `/bin/sh -c` runs: unpack the workspace into /opt/ml/code and cd there, then the command."""
    if not has_workspace:
        return command
    archive = shlex.quote(f"/opt/ml/input/data/{CODE_CHANNEL}/{CODE_ARCHIVE}")
    setup = (f"mkdir -p {CODE_DIR} && tar -xzf {archive} -C {CODE_DIR} && cd {CODE_DIR} || "
             f"{{ echo 'forklift: could not unpack the workspace into {CODE_DIR}' >&2; exit 1; }}")
    return f"{setup}; {command}"  # one line: SageMaker's ContainerEntrypoint pattern takes no newline


def job_name(experiment: str, run: int) -> str:
    """Run 1 of an experiment is the training job of the same name; a restart is `<name>-<run>`."""
    return experiment if run <= 1 else f"{experiment}-{run}"


def training_request(*, experiment: str, job: str, image: str, instance_type: str, role_arn: str,
                     command: str | None = None, workspace_uri: str | None = None,
                     provider_arn: str | None = None, env: dict[str, str] | None = None,
                     hyperparameters: dict[str, str] | None = None, inputs: dict[str, str] | None = None,
                     max_runtime: int = DEFAULT_MAX_RUNTIME, cloned_from: str | None = None,
                     run_token: str | None = None) -> dict[str, Any]:
    image_config: dict[str, Any] = {"TrainingRepositoryAccessMode": "Vpc"}
    if provider_arn:
        image_config["TrainingRepositoryAuthConfig"] = {"TrainingRepositoryCredentialsProviderArn": provider_arn}
    algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File",
                                 "TrainingImageConfig": image_config}
    if workspace_uri and not command:
        raise InvalidExperiment("--workspace needs --command: the command runs in the unpacked workspace")
    if command:
        algorithm["ContainerEntrypoint"] = ["/bin/sh", "-c", entry_script(command, bool(workspace_uri))]
    channels = []
    for name, uri in (inputs or {}).items():
        if workspace_uri and name == CODE_CHANNEL:
            raise InvalidExperiment(f"input channel {CODE_CHANNEL!r} is reserved for the --workspace")
        channels.append(_channel(name, uri))
    if workspace_uri:
        channels.append(_channel(CODE_CHANNEL, workspace_uri))
    tags = [{"Key": TAG_KEY, "Value": experiment}]
    if cloned_from:
        tags.append({"Key": "forklift:cloned-from", "Value": cloned_from})
    if run_token:
        tags.append({"Key": RUN_TAG, "Value": run_token})
    request: dict[str, Any] = {
        "TrainingJobName": job,
        "AlgorithmSpecification": algorithm,
        "RoleArn": role_arn,
        "OutputDataConfig": {"S3OutputPath": f"s3://{OUTPUT_BUCKET}/{experiment}"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10},
        "VpcConfig": PLACEHOLDER_VPC,
        "StoppingCondition": {"MaxRuntimeInSeconds": int(max_runtime)},
        "Tags": tags,
    }
    if channels:
        request["InputDataConfig"] = channels
    if env:
        request["Environment"] = dict(env)
    if hyperparameters:
        request["HyperParameters"] = {k: str(v) for k, v in hyperparameters.items()}
    return request


def check_request(request: dict[str, Any]) -> None:
    """What the server would refuse (botocore's model: instance type enum, patterns…), as a ValueError now."""
    # Imported here, not at the top: loading botocore's SageMaker model is most of a command's start-up
    # time, and only the commands that build a training request need it.
    from forklift.api.errors import ApiError
    from forklift.api.validation import validate

    try:
        validate("sagemaker", "CreateTrainingJob", request)
    except ApiError as exc:
        raise InvalidExperiment(exc.message) from None


def _channel(name: str, uri: str) -> dict[str, Any]:
    if not uri.startswith(("s3://", "https://")):
        raise InvalidExperiment(f"input {name}={uri}: give an s3:// URI (upload local data with `forklift buckets`)")
    return {"ChannelName": name, "InputMode": "File",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": "FullyReplicated"}}}
