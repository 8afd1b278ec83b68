"""Talk to container registries (OCI Distribution / Docker Registry HTTP API V2)."""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ imports them
    from forklift.registry.client import RegistryClient as RegistryClient
    from forklift.registry.client import ResolvedImage as ResolvedImage
    from forklift.registry.errors import AccessDenied as AccessDenied
    from forklift.registry.errors import AuthenticationFailed as AuthenticationFailed
    from forklift.registry.errors import DigestMismatch as DigestMismatch
    from forklift.registry.errors import NotFound as NotFound
    from forklift.registry.errors import PlatformNotFound as PlatformNotFound
    from forklift.registry.errors import RegistryError as RegistryError
    from forklift.registry.errors import RegistryServerError as RegistryServerError
    from forklift.registry.errors import RegistryUnreachable as RegistryUnreachable
    from forklift.registry.errors import TLSError as TLSError
    from forklift.registry.errors import TooManyRequests as TooManyRequests
    from forklift.registry.errors import UnsupportedManifest as UnsupportedManifest
    from forklift.registry.manifest import Descriptor as Descriptor
    from forklift.registry.manifest import Manifest as Manifest
    from forklift.registry.manifest import Platform as Platform
    from forklift.registry.manifest import parse_platform as parse_platform

# Exported names and the module each lives in, loaded on first use: reading a manifest from the
# local store (`forklift images ls`) does not import httpx with the client.
_EXPORTS = {
    "RegistryClient": "client", "ResolvedImage": "client",
    **dict.fromkeys(("AccessDenied", "AuthenticationFailed", "DigestMismatch", "NotFound", "PlatformNotFound",
                     "RegistryError", "RegistryServerError", "RegistryUnreachable", "TLSError", "TooManyRequests",
                     "UnsupportedManifest"), "errors"),
    **dict.fromkeys(("Descriptor", "Manifest", "Platform", "parse_platform"), "manifest"),
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forklift.registry' has no attribute {name!r}")
    return getattr(import_module(f"forklift.registry.{module}"), name)


__all__ = sorted(_EXPORTS)
