"""`--machineType`: SageMaker `ml.*` instance types, or the Gradient machine names users already know.

Gradient names map to the SageMaker instance type closest in vCPUs, memory and GPU class (forklift then
clamps it to this machine, see `forklift.control.instance_types`):

| Gradient | forklift        | why                                   |
| -------- | --------------- | ------------------------------------- |
| C1, C2   | ml.t3.medium    | 1-2 vCPU, small memory                |
| C3       | ml.t3.large     | 2 vCPU, 8 GiB                         |
| C4       | ml.m5.large     | 2 vCPU (SageMaker trains on no c5.large) |
| C5       | ml.c5.xlarge    | 4 vCPU, 8 GiB                         |
| C6       | ml.m5.2xlarge   | 8 vCPU, 32 GiB                        |
| C7       | ml.m5.4xlarge   | 12-16 vCPU, 30-64 GiB                 |
| C8       | ml.c5.9xlarge   | 32-36 vCPU, 60-72 GiB                 |
| C9, C10  | ml.m5.24xlarge  | 96 vCPU                               |
| P4000, RTX4000, M4000 | ml.g4dn.xlarge  | one 8-16 GB workstation-class GPU |
| P5000, RTX5000        | ml.g4dn.2xlarge | one 16 GB GPU, 8 vCPU             |
| P6000, A4000          | ml.g5.xlarge    | one 16-24 GB GPU                  |
| A5000                 | ml.g5.2xlarge   | one 24 GB GPU, 8 vCPU             |
| A6000                 | ml.g5.4xlarge   | one 24-48 GB GPU, 16 vCPU         |
| V100                  | ml.p3.2xlarge   | one V100 16 GB                    |
| A100, A100-80G        | ml.p4d.24xlarge | A100s (SageMaker has no single-A100 type) |
"""

from __future__ import annotations

from dataclasses import dataclass

from forklift.control.instance_types import LIST_COMMAND, TABLE, UnknownInstanceType, check_instance_type
from forklift.experiments.errors import ExperimentError

GRADIENT_MACHINES: dict[str, str] = {
    "C1": "ml.t3.medium", "C2": "ml.t3.medium", "C3": "ml.t3.large", "C4": "ml.m5.large", "C5": "ml.c5.xlarge",
    "C6": "ml.m5.2xlarge", "C7": "ml.m5.4xlarge", "C8": "ml.c5.9xlarge", "C9": "ml.m5.24xlarge",
    "C10": "ml.m5.24xlarge",
    "P4000": "ml.g4dn.xlarge", "RTX4000": "ml.g4dn.xlarge", "M4000": "ml.g4dn.xlarge",
    "P5000": "ml.g4dn.2xlarge", "RTX5000": "ml.g4dn.2xlarge",
    "P6000": "ml.g5.xlarge", "A4000": "ml.g5.xlarge", "A5000": "ml.g5.2xlarge", "A6000": "ml.g5.4xlarge",
    "V100": "ml.p3.2xlarge", "A100": "ml.p4d.24xlarge", "A100-80G": "ml.p4d.24xlarge",
}
DEFAULT_MACHINE = "ml.m5.large"


class UnknownMachineType(ExperimentError, ValueError):
    def __init__(self, given: str, instance_error: UnknownInstanceType | None = None):
        if instance_error is not None:  # an ml.* name: the same message the API's table gives
            super().__init__(str(instance_error))
            return
        super().__init__(
            f"unknown machine type {given!r}. Gradient names: {', '.join(GRADIENT_MACHINES)}; or a SageMaker "
            f"training instance type (`{LIST_COMMAND} --training` lists them)")


@dataclass(frozen=True)
class Machine:
    given: str  # as the user wrote it
    instance_type: str  # the ml.* type the training job runs on
    gpus: int

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


def resolve_machine(given: str | None) -> Machine:
    """`ml.*` as is; a Gradient name (any case) through the table; anything else UnknownMachineType."""
    given = (given or DEFAULT_MACHINE).strip()
    if given.startswith("ml."):
        try:
            entry = check_instance_type(given, "training")
        except UnknownInstanceType as exc:
            raise UnknownMachineType(given, exc) from None
        return Machine(given, entry.name, entry.gpus)
    instance_type = GRADIENT_MACHINES.get(given.upper())
    if instance_type is None:
        raise UnknownMachineType(given)
    return Machine(given, instance_type, TABLE[instance_type].gpus)
