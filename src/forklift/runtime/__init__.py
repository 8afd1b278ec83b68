"""Run containers from an unpacked image rootfs and a plain ContainerSpec.

This layer knows nothing about SageMaker or registries: it receives a `ContainerSpec` and hands
back a `ContainerHandle`. Backends implement the `Runtime` protocol; `RuncRuntime` is the one
that needs no daemon.
"""

from importlib import import_module

# Exported names and the module each lives in. Loaded on first use, so the per-container supervisor
# (which imports forklift.runtime.bundle) starts without importing the whole runtime.
_EXPORTS = {
    "ContainerError": "base", "ContainerExists": "base", "ContainerHandle": "base", "ContainerStartError": "base",
    "Runtime": "base", "run_foreground": "foreground", "RuncHandle": "runc", "RuncRuntime": "runc",
    "ContainerSpec": "spec", "ExitStatus": "spec", "Mount": "spec", "NetworkMode": "spec", "Resources": "spec",
    "SpecError": "spec", "ImageUser": "users", "image_user": "users", "hand_over": "users",
    "hand_over_tree": "users", "skip_released": "base",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forklift.runtime' has no attribute {name!r}")
    return getattr(import_module(f"forklift.runtime.{module}"), name)


__all__ = [
    "ContainerError", "ContainerExists", "ContainerHandle", "ContainerSpec", "ContainerStartError",
    "ExitStatus", "ImageUser", "Mount", "NetworkMode", "Resources", "RuncHandle", "RuncRuntime", "Runtime",
    "SpecError",
    "hand_over", "hand_over_tree", "image_user", "run_foreground", "skip_released",
]
