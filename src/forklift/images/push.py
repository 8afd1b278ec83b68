"""Push an image (from the local store or an OCI layout) to a registry.

The credentials are checked first; then blobs the registry has are skipped; blobs known to live in another
repository of the same registry are mounted; the rest are uploaded (in parallel, bounded). Manifests go
last, children before an index.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forklift.credentials import Keychain
from forklift.images.imagestore import ImageStore
from forklift.images.layout import OciLayout
from forklift.images.progress import NoProgress, TransferProgress
from forklift.images.records import ImageRecord
from forklift.images.tasks import run_all
from forklift.reference import InvalidReference, Reference, parse
from forklift.registry import RegistryClient
from forklift.registry.manifest import Descriptor, Manifest


@dataclass(frozen=True)
class PushSource:
    manifest: Manifest  # an image manifest or an index
    blob_path: Callable[[str], Path]
    load_manifest: Callable[[str], Manifest]
    platform: str | None = None
    from_store: bool = False  # pushing a stored image also records it under the target reference


def source_from_store(store: ImageStore, name: str) -> PushSource:
    image = store.get(name)
    manifest = store.manifest(image.record.index_digest) if image.record.index_digest else image.manifest
    if manifest.is_index and not all(store.blobs.has(d.digest) for d in manifest.manifests):
        manifest = image.manifest  # only one platform was pulled: push that one
    return PushSource(manifest, store.blobs.path, store.manifest, image.record.platform, from_store=True)


def source_from_layout(layout: OciLayout, tag: str | None) -> PushSource:
    return PushSource(layout.find(tag), layout.blob_path, layout.manifest)


@dataclass(frozen=True)
class PushResult:
    digest: str
    statuses: dict[str, str]  # blob digest -> exists | mounted | uploaded


async def push(
    source: PushSource,
    target: Reference | str,
    store: ImageStore,
    *,
    keychain: Keychain | None = None,
    progress: TransferProgress | None = None,
    chunk_size: int | None = None,
    client: RegistryClient | None = None,
) -> PushResult:
    ref = parse(target) if isinstance(target, str) else target
    tag = ref.tag
    if tag is None:  # parse gives every reference without a digest a tag (latest)
        raise InvalidReference(f"push target {ref} needs a tag, not only a digest")
    progress = progress or NoProgress()
    owns_client = client is None
    client = client or RegistryClient(ref.registry, keychain=keychain, settings=store.settings)
    statuses: dict[str, str] = {}
    semaphore = asyncio.Semaphore(store.settings.max_concurrent_uploads)

    async def upload(descriptor: Descriptor, what: str) -> None:
        async with semaphore:
            progress.start(descriptor.digest, descriptor.size, what)
            sources = [r for r in store.records.blob_sources(descriptor.digest, ref.registry) if r != ref.repository]
            status = await client.upload_blob(
                ref.repository, descriptor, source.blob_path(descriptor.digest),
                mount_from=sources[0] if sources else None, chunk_size=chunk_size,
                progress=lambda n: progress.advance(descriptor.digest, n),
            )
            statuses[descriptor.digest] = status
            progress.finish(descriptor.digest, status)
            store.records.add_blob_source(descriptor.digest, ref.registry, ref.repository)

    async def push_image(manifest: Manifest, tag: str) -> None:
        blobs = [(manifest.config, "config")] + [
            (layer, f"layer {i + 1}/{len(manifest.layers)}") for i, layer in enumerate(manifest.layers)]
        unique = {d.digest: (d, what) for d, what in blobs}
        await run_all(upload(d, what) for d, what in unique.values())
        await client.put_manifest(ref.repository, tag, manifest.raw, manifest.media_type)

    try:
        # A wrong password fails here, once, before any blob is read or sent (as `docker push` does).
        await client.check_login()
        top = source.manifest
        if top.is_index:
            for child in top.manifests:
                await push_image(source.load_manifest(child.digest), child.digest)
        else:
            await push_image(top, tag)
        if top.is_index:
            await client.put_manifest(ref.repository, tag, top.raw, top.media_type)
    finally:
        if owns_client:
            await client.aclose()

    if source.from_store and not top.is_index:
        store.records.put(ImageRecord(str(ref.with_tag(tag)), top.digest, None, top.media_type, source.platform,
                                      sum(d.size for d in [top.config, *top.layers]), time.time()))
    return PushResult(top.digest, statuses)


def push_sync(source: PushSource, target: Reference | str, store: ImageStore, **kwargs: Any) -> PushResult:
    return asyncio.run(push(source, target, store, **kwargs))
