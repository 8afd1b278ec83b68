"""The members AWS's Describe* answers carry when the create request left them out.

AWS answers a DescribeTrainingJob with `OutputDataConfig.KmsKeyId: ""`, `EnableNetworkIsolation: false`
and the like whatever the request said, and clients index them (the SageMaker Python SDK's
`Estimator.attach` reads `OutputDataConfig["KmsKeyId"]`, `ResourceConfig["VolumeSizeInGB"]`,
`StoppingCondition["MaxRuntimeInSeconds"]`). Each function takes a response built from the stored request
and returns it with those defaults, copying what it changes so the request itself is never touched.
"""

from __future__ import annotations

from typing import Any

TRAINING_FLAGS = ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining")
MAX_RUNTIME_SECONDS = 86400  # AWS's default MaxRuntimeInSeconds: one day
VOLUME_SIZE_GB = 30  # the SageMaker Python SDK's default volume; forklift does not enforce it


def _defaults(body: dict[str, Any], member: str, values: dict[str, Any]) -> None:
    body[member] = {**values, **(body.get(member) or {})}


def training_job(body: dict[str, Any]) -> dict[str, Any]:
    _defaults(body, "OutputDataConfig", {"KmsKeyId": "", "CompressionType": "GZIP"})
    _defaults(body, "AlgorithmSpecification", {"EnableSageMakerMetricsTimeSeries": False})
    if not (body.get("ResourceConfig") or {}).get("InstanceGroups"):
        _defaults(body, "ResourceConfig", {"VolumeSizeInGB": VOLUME_SIZE_GB})
    _defaults(body, "StoppingCondition", {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS})
    for flag in TRAINING_FLAGS:
        body.setdefault(flag, False)
    return body


def model(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("PrimaryContainer"):
        _defaults(body, "PrimaryContainer", {"Mode": "SingleModel"})
    body.setdefault("EnableNetworkIsolation", False)
    return body


def endpoint_config(body: dict[str, Any]) -> dict[str, Any]:
    body.setdefault("EnableNetworkIsolation", False)
    return body
