"""The base of the container runtime's errors (runc, specs, networks, overlays, instance types)."""

from __future__ import annotations

from forklift.errors import ForkliftError


class ContainerRuntimeError(ForkliftError):
    """A container could not be set up, started or managed as asked."""
