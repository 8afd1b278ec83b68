"""What the inference control plane refuses; `str()` is the message the API passes on."""

from forklift.control.errors import ControlError, InvalidRequest

__all__ = ["AlreadyExists", "ControlError", "InUse", "InvalidRequest", "NotFound"]


class NotFound(ControlError):
    """AWS answers ValidationException 'Could not find model "arn…".' and the like."""


class AlreadyExists(ControlError):
    """AWS answers ValidationException 'Cannot create already existing …'."""


class InUse(ControlError):
    """The resource is busy (e.g. an endpoint that is being created or updated)."""


class ResourceMissing(NotFound):
    """`kind` ("model", "endpoint-config", "endpoint") named `name` does not exist."""

    def __init__(self, kind: str, name: str):
        super().__init__(f"Could not find {kind} {name}")
        self.kind, self.name = kind, name
