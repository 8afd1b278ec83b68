"""OCI image layouts on disk (`oci:PATH[:TAG]`), as skopeo and umoci write them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forklift.atomicfile import write_atomically
from forklift.images.errors import ImageError
from forklift.registry.manifest import OCI_INDEX, JSONObject, Manifest, media_type_of

REF_NAME = "org.opencontainers.image.ref.name"


class LayoutError(ImageError, ValueError):
    pass


@dataclass(frozen=True)
class OciLayout:
    root: Path

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    def index(self) -> JSONObject:
        try:
            index = json.loads((self.root / "index.json").read_text())
        except FileNotFoundError:
            raise LayoutError(f"{self.root} is not an OCI image layout (no index.json)") from None
        if not isinstance(index, dict):
            raise LayoutError(f"{self.root}/index.json is not a JSON object")
        return index

    def manifest(self, digest: str) -> Manifest:
        raw = self.blob_path(digest).read_bytes()
        return Manifest(raw=raw, media_type=media_type_of(raw, None), digest=digest)

    def find(self, tag: str | None) -> Manifest:
        """The manifest tagged `tag`, or the only one when no tag is given."""
        entries = self.index().get("manifests", [])
        if tag is None:
            if len(entries) != 1:
                tags = sorted(e.get("annotations", {}).get(REF_NAME, "?") for e in entries)
                raise LayoutError(f"{self.root} holds {len(entries)} images; name one of: {', '.join(tags)}")
            return self.manifest(entries[0]["digest"])
        for entry in entries:
            if entry.get("annotations", {}).get(REF_NAME) == tag:
                return self.manifest(entry["digest"])
        tags = sorted(e.get("annotations", {}).get(REF_NAME, "?") for e in entries)
        raise LayoutError(f"no image tagged '{tag}' in {self.root}; it has: {', '.join(tags) or 'none'}")

    def write(self, manifest: Manifest, tag: str, blobs: dict[str, bytes | Path]) -> None:
        """Add a manifest (and its blobs) to the layout under `tag`, creating the layout if needed."""
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        write_atomically(self.root / "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        for digest, content in {manifest.digest: manifest.raw, **blobs}.items():
            target = self.blob_path(digest)
            if target.exists():
                continue
            write_atomically(target, content if isinstance(content, bytes) else content.read_bytes())
        try:
            index = self.index()
        except LayoutError:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != tag]
        index["manifests"].append({"mediaType": manifest.media_type, "digest": manifest.digest,
                                   "size": len(manifest.raw), "annotations": {REF_NAME: tag}})
        write_atomically(self.root / "index.json", json.dumps(index).encode())


def parse_layout_source(text: str) -> tuple[OciLayout, str | None]:
    """`oci:PATH[:TAG]` → (layout, tag)."""
    if not text.startswith("oci:"):
        raise LayoutError(f"'{text}' is not an OCI layout source (expected oci:PATH[:TAG])")
    rest = text[len("oci:"):]
    path, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag:
        return OciLayout(Path(rest)), None
    return OciLayout(Path(path)), tag or None
