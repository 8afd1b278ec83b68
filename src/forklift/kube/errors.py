"""forklift.kube's errors: what forklift was asked to render breaks a rule Kubernetes enforces."""

from __future__ import annotations

from forklift.errors import ForkliftError


class KubeError(ForkliftError):
    """The base of forklift.kube's errors."""


class InvalidObject(KubeError, ValueError):
    """A name, plan or setting the API server would refuse, or one forklift refuses to render."""


class NotPinned(InvalidObject):
    """An image named by a tag (or anything but `registry/repository@sha256:<64 hex>`)."""


class InvalidSetting(KubeError, ValueError):
    """A Kubernetes setting (a `[kubernetes]` key of config.toml or a `forklift serve` flag) is wrong."""
