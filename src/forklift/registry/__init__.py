"""Talk to container registries (OCI Distribution / Docker Registry HTTP API V2)."""

from importlib import import_module

# Exported names and the module each lives in, loaded on first use: reading a manifest from the
# local store (`forklift images ls`) does not import httpx with the client.
_EXPORTS = {
    "RegistryClient": "client", "ResolvedImage": "client",
    **dict.fromkeys(("AccessDenied", "AuthenticationFailed", "DigestMismatch", "NotFound", "PlatformNotFound",
                     "RegistryError", "RegistryServerError", "RegistryUnreachable", "TLSError", "TooManyRequests",
                     "UnsupportedManifest"), "errors"),
    **dict.fromkeys(("Descriptor", "Manifest", "Platform", "parse_platform"), "manifest"),
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forklift.registry' has no attribute {name!r}")
    return getattr(import_module(f"forklift.registry.{module}"), name)


__all__ = sorted(_EXPORTS)
