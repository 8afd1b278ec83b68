"""SageMaker `ml.*` instance types as CPU, memory and GPU limits for a local container.

An instance type larger than this machine is clamped to what the machine has, with a warning;
an unknown one is an error that lists the known types.
"""

from __future__ import annotations

import os
from pathlib import Path

from forklift.runtime.spec import Resources

GIB = 1024**3

# name -> (vCPU, memory GiB, GPUs)
INSTANCE_TYPES: dict[str, tuple[int, float, int]] = {}


def _family(prefix: str, sizes: dict[str, tuple[int, float, int] | tuple[int, float]]) -> None:
    for size, spec in sizes.items():
        cpus, mem, *gpus = spec
        INSTANCE_TYPES[f"ml.{prefix}.{size}"] = (cpus, mem, gpus[0] if gpus else 0)


_BURST = {"medium": (2, 4), "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32)}
_family("t2", _BURST)
_family("t3", _BURST)
_family("m4", {"xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "10xlarge": (40, 160),
               "16xlarge": (64, 256)})
_family("m5", {"large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64),
               "12xlarge": (48, 192), "24xlarge": (96, 384)})
_family("m6i", {"large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64),
                "8xlarge": (32, 128), "12xlarge": (48, 192), "16xlarge": (64, 256), "24xlarge": (96, 384),
                "32xlarge": (128, 512)})
_family("c5", {"large": (2, 4), "xlarge": (4, 8), "2xlarge": (8, 16), "4xlarge": (16, 32), "9xlarge": (36, 72),
               "18xlarge": (72, 144)})
_family("r5", {"large": (2, 16), "xlarge": (4, 32), "2xlarge": (8, 64), "4xlarge": (16, 128),
               "12xlarge": (48, 384), "24xlarge": (96, 768)})
_family("p3", {"2xlarge": (8, 61, 1), "8xlarge": (32, 244, 4), "16xlarge": (64, 488, 8)})
_family("p3dn", {"24xlarge": (96, 768, 8)})
_family("p4d", {"24xlarge": (96, 1152, 8)})
_family("g4dn", {"xlarge": (4, 16, 1), "2xlarge": (8, 32, 1), "4xlarge": (16, 64, 1), "8xlarge": (32, 128, 1),
                 "12xlarge": (48, 192, 4), "16xlarge": (64, 256, 1)})
_family("g5", {"xlarge": (4, 16, 1), "2xlarge": (8, 32, 1), "4xlarge": (16, 64, 1), "8xlarge": (32, 128, 1),
               "12xlarge": (48, 192, 4), "16xlarge": (64, 256, 1), "24xlarge": (96, 384, 4),
               "48xlarge": (192, 768, 8)})


class UnknownInstanceType(ValueError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"unknown instance type {name!r}; known types: {', '.join(known_instance_types())}")


def known_instance_types() -> list[str]:
    def key(name: str) -> tuple:
        family, size = name.split(".")[1:3]
        return family, INSTANCE_TYPES[name][0], size

    return sorted(INSTANCE_TYPES, key=key)


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def machine_gpu_count(dev: Path = Path("/dev")) -> int:
    return sum(1 for p in dev.glob("nvidia*") if p.name[len("nvidia"):].isdigit())


def resolve_instance_type(
    name: str,
    machine_cpus: int | None = None,
    machine_memory: int | None = None,
    machine_gpus: int | None = None,
) -> Resources:
    """The limits for `name`, clamped to this machine (or the given machine size)."""
    if name not in INSTANCE_TYPES:
        raise UnknownInstanceType(name)
    cpus, mem_gib, gpus = INSTANCE_TYPES[name]
    memory = int(mem_gib * GIB)
    have_cpus = machine_cpus if machine_cpus is not None else (os.cpu_count() or 1)
    have_memory = machine_memory if machine_memory is not None else machine_memory_bytes()
    have_gpus = machine_gpus if machine_gpus is not None else machine_gpu_count()

    notes = []
    if cpus > have_cpus:
        notes.append(f"{cpus} vCPU -> {have_cpus}")
        cpus = have_cpus
    if memory > have_memory:
        notes.append(f"{mem_gib:g} GiB -> {have_memory / GIB:.1f} GiB")
        memory = have_memory
    if gpus > have_gpus:
        notes.append(f"{gpus} GPU -> {have_gpus}")
        gpus = have_gpus
    warning = None
    if notes:
        warning = f"{name} is larger than this machine; clamped: {', '.join(notes)}"
    return Resources(cpus=float(cpus), memory_bytes=memory, gpus=gpus, clamped=bool(notes),
                     warning=warning, instance_type=name)
