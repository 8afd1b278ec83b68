"""Talk to container registries (OCI Distribution / Docker Registry HTTP API V2)."""

from forklift.registry.client import RegistryClient, ResolvedImage
from forklift.registry.errors import (
    AccessDenied,
    AuthenticationFailed,
    DigestMismatch,
    NotFound,
    PlatformNotFound,
    RegistryError,
    RegistryServerError,
    RegistryUnreachable,
    TLSError,
    TooManyRequests,
    UnsupportedManifest,
)
from forklift.registry.manifest import Descriptor, Manifest, Platform, parse_platform

__all__ = [
    "AccessDenied", "AuthenticationFailed", "Descriptor", "DigestMismatch", "Manifest", "NotFound", "Platform",
    "PlatformNotFound", "RegistryClient", "RegistryError", "RegistryServerError", "RegistryUnreachable",
    "ResolvedImage", "TLSError", "TooManyRequests", "UnsupportedManifest", "parse_platform",
]
