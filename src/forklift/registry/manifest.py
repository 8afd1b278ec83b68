"""Manifest media types, parsing, and platform selection from an index."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from forklift.reference import parse_digest
from forklift.registry.errors import RegistryServerError

# A JSON object as json.loads returns it (manifests, descriptors, image configs, token answers).
JSONObject = dict[str, Any]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(INDEX_TYPES + IMAGE_TYPES)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: JSONObject | None = None
    annotations: JSONObject = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: JSONObject) -> Descriptor:
        """A descriptor as a registry sent it; TypeError or ValueError for a member of the wrong shape.

        The digest goes into blob URLs and content-store paths, and the size bounds what is read, so
        both are checked here rather than trusted wherever they are used.
        """
        media_type, size = data.get("mediaType", ""), data.get("size", 0)
        platform, annotations, urls = data.get("platform"), data.get("annotations") or {}, data.get("urls") or []
        if not isinstance(media_type, str):
            raise TypeError("mediaType is not a string")
        if not isinstance(data["digest"], str):
            raise TypeError("digest is not a string")
        if type(size) is not int or size < 0:
            raise ValueError(f"size {size!r} is not a non-negative integer")
        if platform is not None and not (isinstance(platform, dict)
                                         and all(isinstance(v, str) for v in platform.values()
                                                 if not isinstance(v, list))):
            raise TypeError("platform is not an object of strings")
        if not isinstance(annotations, dict) or not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise TypeError("annotations is not an object, or urls not a list of strings")
        return cls(media_type=media_type, digest=parse_digest(data["digest"]), size=size, platform=platform,
                   annotations=annotations, urls=tuple(urls))

    def to_json(self) -> JSONObject:
        out: JSONObject = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        if self.urls:
            out["urls"] = list(self.urls)
        return out


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry sent it: digests are computed over `raw`, never re-serialized JSON."""

    raw: bytes
    media_type: str
    digest: str

    @property
    def json(self) -> JSONObject:
        try:
            value = json.loads(self.raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser recurses
            raise RegistryServerError(f"manifest {self.digest} is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise RegistryServerError(f"manifest {self.digest} is not a JSON object")
        return value

    def _descriptors(self, member: str, found: Any) -> list[Descriptor]:
        """The manifest's `member` descriptors; a malformed one is the registry's error, named."""
        try:
            return [Descriptor.from_json(d) for d in found]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RegistryServerError(f"manifest {self.digest}: malformed {member} descriptor ({exc!r})") from None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def config(self) -> Descriptor:
        return self._descriptors("config", [self.json.get("config")])[0]

    @property
    def layers(self) -> list[Descriptor]:
        return self._descriptors("layers", self.json.get("layers") or [])

    @property
    def manifests(self) -> list[Descriptor]:
        return self._descriptors("manifests", self.json.get("manifests") or [])


def media_type_of(raw: bytes, content_type: str | None) -> str:
    """Content-Type first; fall back to the body's mediaType (optional in OCI), then to its shape."""
    header = (content_type or "").split(";")[0].strip()
    if header and header not in ("application/json", "application/octet-stream", "text/plain"):
        return header
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return header
    if isinstance(body, dict):
        if isinstance(body.get("mediaType"), str) and body["mediaType"]:
            return str(body["mediaType"])
        if body.get("schemaVersion") == 1:
            return DOCKER_SCHEMA1[1]
        if "manifests" in body:
            return OCI_INDEX
        if "config" in body and "layers" in body:
            return OCI_MANIFEST
    return header


# -- platforms ---------------------------------------------------------------------------------
# Other names for OCI architectures: uname's (`platform.machine()`) and Debian's.
ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386"}


def oci_architecture(name: str) -> str:
    """The OCI (GOARCH) name of an architecture: `x86_64` -> `amd64`, `aarch64` -> `arm64`."""
    return ARCH_ALIASES.get(name, name)


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def parse_platform(text: str) -> Platform:
    """`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`; arm64 means arm64/v8."""
    parts = [p.strip().lower() for p in text.split("/")]
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"invalid platform '{text}': expected os/arch[/variant], e.g. linux/amd64")
    arch = oci_architecture(parts[1])
    variant = parts[2] if len(parts) == 3 else None
    return _normalize(Platform(parts[0], arch, variant))


def _normalize(p: Platform) -> Platform:
    if p.architecture == "arm64" and p.variant in (None, "v8"):
        return Platform(p.os, "arm64", None)
    if p.architecture == "amd64" and p.variant == "v1":
        return Platform(p.os, "amd64", None)
    return p


DEFAULT_PLATFORM = Platform("linux", "amd64")


def platform_of(descriptor: Descriptor) -> Platform | None:
    p = descriptor.platform or {}
    if not p.get("os") or not p.get("architecture"):
        return None
    return _normalize(Platform(p["os"], oci_architecture(p["architecture"]), p.get("variant")))


def _is_attestation(descriptor: Descriptor) -> bool:
    platform = descriptor.platform or {}
    return (
        descriptor.annotations.get("vnd.docker.reference.type") == "attestation-manifest"
        or (platform.get("os") == "unknown" and platform.get("architecture") == "unknown")
    )


def _variant_rank(wanted: Platform, candidate: Platform) -> int | None:
    """0 = exact; higher = older compatible arm variant (v7 runs v6 and v5); None = no match."""
    if candidate.os != wanted.os or candidate.architecture != wanted.architecture:
        return None
    if candidate.variant == wanted.variant or wanted.variant is None or candidate.variant is None:
        return 0
    if wanted.architecture == "arm":
        order = ["v8", "v7", "v6", "v5"]
        if wanted.variant in order and candidate.variant in order:
            distance = order.index(candidate.variant) - order.index(wanted.variant)
            return distance if distance >= 0 else None
    return None


def select_platform(index: Manifest, wanted: Platform) -> Descriptor:
    """The best index entry for `wanted`; raises LookupError naming the platforms the index has."""
    best: tuple[int, Descriptor] | None = None
    available = []
    for descriptor in index.manifests:
        if _is_attestation(descriptor):
            continue
        candidate = platform_of(descriptor)
        if candidate is None:
            continue
        available.append(str(candidate))
        rank = _variant_rank(wanted, candidate)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, descriptor)
    if best is None:
        raise LookupError(
            f"no manifest for platform {wanted} in the index; available platforms: "
            + (", ".join(sorted(set(available))) or "none")
        )
    return best[1]
