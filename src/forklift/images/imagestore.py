"""Images held locally: records in the database, content in the blob store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from forklift.config import Settings
from forklift.images.content import BlobStore
from forklift.images.errors import ImageError
from forklift.reference import InvalidReference, parse
from forklift.registry.manifest import Descriptor, JSONObject, Manifest, media_type_of

if TYPE_CHECKING:
    from forklift.images.records import ImageRecord, ImageRecords


class ImageNotFound(ImageError, LookupError):
    def __str__(self) -> str:
        return f"image {self.args[0]} is not in the local store; pull or build it first"


@dataclass(frozen=True)
class LocalImage:
    reference: str
    record: ImageRecord
    manifest: Manifest

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def config_descriptor(self) -> Descriptor:
        return self.manifest.config

    @property
    def layers(self) -> list[Descriptor]:
        return self.manifest.layers


class ImageStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.blobs = BlobStore(settings.blobs_dir)

    @cached_property
    def records(self) -> ImageRecords:
        # SQLAlchemy takes a quarter of a second to import: a pull pays it while its layers download.
        from forklift.db import session_factory
        from forklift.images.records import ImageRecords

        return ImageRecords(session_factory(self.settings.database_url))

    def manifest(self, digest: str) -> Manifest:
        raw = self.blobs.read_bytes(digest)
        return Manifest(raw=raw, media_type=media_type_of(raw, None), digest=digest)

    def config(self, image: LocalImage) -> JSONObject:
        config = json.loads(self.blobs.read_bytes(image.config_descriptor.digest))
        if not isinstance(config, dict):
            raise ValueError(f"the config of {image.reference} is not a JSON object")  # noqa: TRY004 - bad JSON
        return config

    def get(self, name: str) -> LocalImage:
        """By reference (`ubuntu`, `localhost:5443/demo/tiny:1.0`) or by manifest digest (`sha256:…`, a prefix
        works)."""
        record = None
        if name.startswith("sha256:"):
            matches = {r.digest: r for r in self.records.all() if r.digest.startswith(name)}
            if len(matches) > 1:
                raise ImageNotFound(f"{name} (ambiguous: matches {len(matches)} images)")
            record = next(iter(matches.values()), None)
        else:
            try:
                record = self.records.get(str(parse(name)))
            except InvalidReference:
                record = None
            record = record or self.records.get(name)
        if record is None:
            raise ImageNotFound(name)
        return LocalImage(record.reference, record, self.manifest(record.digest))

    def list(self) -> list[ImageRecord]:
        return self.records.all()

    def remove(self, name: str) -> ImageRecord:
        image = self.get(name)
        self.records.remove(image.reference)
        return image.record

    def referenced_blobs(self) -> set[str]:
        keep: set[str] = set()
        for record in self.records.all():
            for digest in filter(None, (record.digest, record.index_digest)):
                if not self.blobs.has(digest):
                    continue
                keep.add(digest)
                manifest = self.manifest(digest)
                if manifest.is_index:
                    keep.update(d.digest for d in manifest.manifests)
                else:
                    keep.add(manifest.config.digest)
                    keep.update(layer.digest for layer in manifest.layers)
        return keep

    def prune(self) -> tuple[int, int]:
        """Delete blobs no image refers to and no live lease holds (a pull or build still writing
        them); returns (blobs removed, bytes freed)."""
        self.records  # noqa: B018 - open the database before the sweep holds writers off
        removed = freed = 0
        with self.blobs.collecting() as leased:
            keep = leased | self.referenced_blobs()
            for digest in list(self.blobs.digests()):
                if digest not in keep:
                    freed += self.blobs.size(digest)
                    self.blobs.delete(digest)
                    removed += 1
        return removed, freed
