"""Run containers from an unpacked image rootfs and a plain ContainerSpec.

This layer knows nothing about SageMaker or registries: it receives a `ContainerSpec` and hands
back a `ContainerHandle`. Backends implement the `Runtime` protocol; `RuncRuntime` is the one
that needs no daemon.
"""

from forklift.runtime.base import (
    ContainerError,
    ContainerExists,
    ContainerHandle,
    ContainerStartError,
    Runtime,
)
from forklift.runtime.foreground import run_foreground
from forklift.runtime.instance_types import UnknownInstanceType, resolve_instance_type
from forklift.runtime.runc import RuncHandle, RuncRuntime
from forklift.runtime.spec import ContainerSpec, ExitStatus, Mount, NetworkMode, Resources, SpecError

__all__ = [
    "ContainerError", "ContainerExists", "ContainerHandle", "ContainerSpec", "ContainerStartError",
    "ExitStatus", "Mount", "NetworkMode", "Resources", "RuncHandle", "RuncRuntime", "Runtime", "SpecError",
    "UnknownInstanceType", "resolve_instance_type", "run_foreground",
]
