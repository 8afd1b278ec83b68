"""Pull an image into the local store: resolve, fetch missing blobs in parallel (bounded), record."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forklift.credentials import Keychain
from forklift.errors import is_disk_full
from forklift.images.content import Lease
from forklift.images.imagestore import ImageStore, LocalImage
from forklift.images.limits import ImageLimitExceeded, check_download_room, disk_full
from forklift.images.progress import NoProgress, TransferProgress
from forklift.images.tasks import run_all
from forklift.reference import Reference, parse
from forklift.registry import RegistryClient
from forklift.registry.bounded import MAX_CONFIG_BYTES, ResponseTooLarge
from forklift.registry.manifest import Descriptor, Manifest, Platform


@dataclass(frozen=True)
class PullResult:
    image: LocalImage
    downloaded_bytes: int
    fetched_blobs: int
    cached_blobs: int


async def pull(
    reference: Reference | str,
    store: ImageStore,
    *,
    keychain: Keychain | None = None,
    platform: Platform | None = None,
    progress: TransferProgress | None = None,
    client: RegistryClient | None = None,
    on_manifest: Callable[[Manifest], None] | None = None,
    on_blob: Callable[[str], None] | None = None,
) -> PullResult:
    """Pull into the store. `on_manifest` hears the chosen image manifest, `on_blob` each blob as it lands.

    A disk that fills meanwhile (a blob, the image record) is one ImageLimitExceeded naming FORKLIFT_HOME;
    what landed stays (a partial blob resumes), nothing is recorded as pulled.
    """
    ref = parse(reference) if isinstance(reference, str) else reference
    try:
        return await _pull(ref, store, keychain, platform, progress, client, on_manifest, on_blob)
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, ImageLimitExceeded):
            raise disk_full(str(ref), store.settings.home, "pulling stopped") from exc
        raise


async def _pull(ref: Reference, store: ImageStore, keychain: Keychain | None, platform: Platform | None,
                progress: TransferProgress | None, client: RegistryClient | None,
                on_manifest: Callable[[Manifest], None] | None, on_blob: Callable[[str], None] | None) -> PullResult:
    progress = progress or NoProgress()
    owns_client = client is None
    client = client or RegistryClient(ref.registry, keychain=keychain, settings=store.settings,
                                      on_retry=progress.retrying)
    lease: Lease | None = None
    try:
        try:
            resolved = await client.resolve(ref, platform)
            manifest = resolved.manifest
            if on_manifest is not None:
                on_manifest(manifest)
            if manifest.config.size > MAX_CONFIG_BYTES:  # it is read into memory whole, later
                raise ResponseTooLarge(
                    f"the config of image {ref} is {manifest.config.size} bytes by its manifest, more than the "
                    f"{MAX_CONFIG_BYTES >> 20} MiB forklift reads; it is refused", registry=ref.registry)
            blobs = [manifest.config, *manifest.layers]
            store.blobs.root.mkdir(parents=True, exist_ok=True)
            check_download_room(str(ref), store.blobs.root, [d.size for d in blobs if not store.blobs.has(d.digest)])
            # Taken before the first blob is written and released once the record refers to them: a
            # prune meanwhile keeps them.
            leased = [manifest.digest, *([resolved.index.digest] if resolved.index else []), *(d.digest for d in blobs)]
            lease = store.blobs.lease(*leased)
            semaphore = asyncio.Semaphore(store.settings.max_concurrent_downloads)
            counts = {"fetched": 0, "cached": 0, "bytes": 0}

            async def fetch(descriptor: Descriptor, what: str) -> None:
                async with semaphore:
                    progress.start(descriptor.digest, descriptor.size, what)

                    async def download(partial: Path) -> None:
                        def advance(n: int) -> None:
                            counts["bytes"] += n
                            progress.advance(descriptor.digest, n)

                        await client.fetch_blob(ref.repository, descriptor, partial, advance)

                    _, fetched = await store.blobs.ensure(descriptor.digest, download)
                    counts["fetched" if fetched else "cached"] += 1
                    progress.finish(descriptor.digest, "downloaded" if fetched else "cached")
                    if on_blob is not None:
                        on_blob(descriptor.digest)

            await run_all([
                # Open the database (and import SQLAlchemy) on a spare core while the blobs download.
                asyncio.to_thread(lambda: store.records),
                fetch(manifest.config, "config"),
                *(fetch(layer, f"layer {i + 1}/{len(manifest.layers)}") for i, layer in enumerate(manifest.layers)),
            ])
        finally:
            if owns_client:
                await client.aclose()

        from forklift.images.records import ImageRecord  # loaded by now (see above): SQLAlchemy's cost

        store.blobs.put_bytes(manifest.raw)
        if resolved.index is not None:
            store.blobs.put_bytes(resolved.index.raw)
        for descriptor in blobs:
            store.records.add_blob_source(descriptor.digest, ref.registry, ref.repository)
        record = ImageRecord(
            reference=str(ref),
            digest=manifest.digest,
            index_digest=resolved.index.digest if resolved.index else None,
            media_type=manifest.media_type,
            platform=(str(resolved.platform) if resolved.platform
                      else _platform_from_config(store, manifest.config.digest)),
            size=sum(d.size for d in blobs),
            created_at=time.time(),
        )
        store.records.put(record)
        image = LocalImage(record.reference, record, manifest)
        return PullResult(image, counts["bytes"], counts["fetched"], counts["cached"])
    finally:
        if lease is not None:
            lease.release()


def _platform_from_config(store: ImageStore, config_digest: str) -> str | None:
    try:
        config = json.loads(store.blobs.read_bytes(config_digest))
    except (ValueError, KeyError):
        return None
    parts = [config.get("os"), config.get("architecture"), config.get("variant")]
    return "/".join(p for p in parts if p) or None


def pull_sync(reference: Reference | str, store: ImageStore, **kwargs: Any) -> PullResult:
    return asyncio.run(pull(reference, store, **kwargs))
