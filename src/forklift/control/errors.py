"""What the control plane refuses, in words the API passes on unchanged."""

from forklift.errors import ForkliftError


class ControlError(ForkliftError):
    """A request the control plane cannot accept; `str()` is the message for the caller."""


class InvalidRequest(ControlError):
    """The request is well-formed but not acceptable (AWS: ValidationException)."""


class JobNotFound(ControlError):
    """No job by that name (AWS answers ValidationException "Requested resource not found.")."""


class JobInUse(ControlError):
    """A job by that name exists already (AWS: ResourceInUse)."""


class RenderFailed(ControlError):
    """A resource's Kubernetes objects cannot be rendered (`forklift k8s render`); the message says why."""
