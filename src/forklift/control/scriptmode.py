"""SageMaker script mode: the user's code archive staged by forklift into the container's /opt/ml/code.

The SDK's framework estimators upload `source_dir` as `sourcedir.tar.gz` and name it in the
hyperparameter `sagemaker_submit_directory` (JSON-encoded, as the SDK encodes every value:
`"\"s3://b/k/source/sourcedir.tar.gz\""`); a Model's container names it in its Environment's
`SAGEMAKER_SUBMIT_DIRECTORY` (a plain string). The container is never given a way to S3: forklift
downloads and unpacks the archive (`storage.fetch_source_dir`) into the job's `code/` (an endpoint's
`<variant>-g<generation>/code/`), mounts it at /opt/ml/code and tells the container the code is
there, `sagemaker_submit_directory` (or the variable) rewritten to "/opt/ml/code", encoded as given.
The SageMaker training toolkit's `files.download_and_extract` then uses that directory as it is. The
request itself keeps the user's values: Describe answers what was sent.

A value that is already a container path (`/opt/ml/model/code`: the SDK repacked the code into
model.tar.gz) is left alone; the model data's extraction keeps its `code/`.
"""

from __future__ import annotations

import json
from pathlib import Path

from forklift.cancel import NEVER, Cancel, Cancelled
from forklift.config import Settings
from forklift.control.errors import ControlError
from forklift.storage import fetch_source_dir

HYPERPARAMETER = "sagemaker_submit_directory"
ENVIRONMENT = "SAGEMAKER_SUBMIT_DIRECTORY"
CODE_DIR = "/opt/ml/code"
_STAGED_PREFIXES = ("s3://", "file://")  # anything else is a path in the container


class SourceCodeError(ControlError):
    """The script-mode code archive could not be staged; the message names where it was asked for and the URI."""


def _decode(value: str) -> tuple[str, bool]:
    """The value, and whether it was a JSON string (the SDK's encoding)."""
    try:
        decoded = json.loads(value)
    except (ValueError, TypeError):
        return value, False
    return (decoded, True) if isinstance(decoded, str) else (value, False)


def _staged_uri(value: str | None) -> str | None:
    if value and value.lower().startswith(_STAGED_PREFIXES):
        return value
    return None


def training_code_uri(request: dict) -> str | None:
    """The archive a training job's `sagemaker_submit_directory` names, when forklift must stage it."""
    raw = (request.get("HyperParameters") or {}).get(HYPERPARAMETER)
    return _staged_uri(_decode(str(raw))[0]) if raw is not None else None


def container_hyperparameters(hyperparameters: dict[str, str]) -> dict[str, str]:
    """What the container reads in hyperparameters.json: the code's URI replaced by /opt/ml/code."""
    raw = hyperparameters.get(HYPERPARAMETER)
    if raw is None:
        return hyperparameters
    value, encoded = _decode(raw)
    if _staged_uri(value) is None:
        return hyperparameters
    return {**hyperparameters, HYPERPARAMETER: json.dumps(CODE_DIR) if encoded else CODE_DIR}


def endpoint_code_uri(container: dict) -> str | None:
    """The archive a model container's `SAGEMAKER_SUBMIT_DIRECTORY` names, when forklift must stage it."""
    return _staged_uri((container.get("Environment") or {}).get(ENVIRONMENT))


def endpoint_container(container: dict) -> dict:
    """The container definition an instance runs: SAGEMAKER_SUBMIT_DIRECTORY pointing at /opt/ml/code."""
    if endpoint_code_uri(container) is None:
        return container
    return {**container, "Environment": {**container["Environment"], ENVIRONMENT: CODE_DIR}}


def stage_code(uri: str, dest_dir: Path, settings: Settings, where: str, cancel: Cancel = NEVER) -> Path:
    """Unpack the archive at `uri` into `dest_dir`; `SourceCodeError` naming `where` (the hyperparameter or
    variable) and the URI when it cannot be had or is refused. `dest_dir` is removed on any failure."""
    try:
        return fetch_source_dir(uri, dest_dir, settings, cancel)
    except Cancelled:
        raise
    except Exception as exc:
        raise SourceCodeError(f"the code archive {where} names ({uri}) could not be staged into {CODE_DIR}: "
                              f"{exc}; upload a .tar.gz of your source_dir there") from exc
