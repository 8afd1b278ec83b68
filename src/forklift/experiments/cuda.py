"""Does an image look CUDA-capable? Asked before a GPU experiment, as Gradient advises basing GPU images on
`nvidia/cuda`. Only the manifest and the config blob are fetched, never the layers."""

from __future__ import annotations

import asyncio
import json

from forklift.config import Settings
from forklift.credentials import Keychain
from forklift.reference import parse

CUDA_ENV = ("CUDA_VERSION", "NV_CUDA_LIB_VERSION", "NVIDIA_REQUIRE_CUDA", "CUDA_HOME", "NVIDIA_VISIBLE_DEVICES",
            "NV_CUDNN_VERSION", "CUDNN_VERSION")


def looks_cuda(config: dict) -> bool:
    """CUDA env vars, an NVIDIA/CUDA label, or a build step that mentions cuda in the image config."""
    inner = config.get("config") or config.get("Config") or {}
    for item in inner.get("Env") or []:
        if item.split("=", 1)[0] in CUDA_ENV:
            return True
    labels = inner.get("Labels") or {}
    if any("cuda" in key.lower() or "nvidia" in key.lower() for key in labels):
        return True
    return any("cuda" in (step.get("created_by") or "").lower() for step in config.get("history") or [])


async def _fetch_config(image: str, settings: Settings, keychain: Keychain) -> dict:
    from forklift.registry import RegistryClient  # here: httpx loads only when an image is checked

    ref = parse(image)
    async with RegistryClient(ref.registry, keychain=keychain, settings=settings, max_retries=2) as client:
        resolved = await client.resolve(ref)
        return json.loads(await client.get_blob_bytes(ref.repository, resolved.manifest.config))


def cuda_warning(image: str, settings: Settings, keychain: Keychain) -> str | None:
    """A warning for a GPU machine type, or None when the image looks CUDA-capable."""
    try:
        config = asyncio.run(_fetch_config(image, settings, keychain))
    except Exception as exc:  # noqa: BLE001 - the check is advice: a failure here never blocks the experiment
        return f"warning: could not inspect {image} to check that it is CUDA-capable: {exc}"
    if looks_cuda(config):
        return None
    return (f"warning: {image} does not look CUDA-capable (no CUDA environment variables or nvidia/cuda base "
            "layers): on a GPU machine type base the image on an official NVIDIA image, e.g. "
            "`FROM nvidia/cuda:12.2.0-runtime-ubuntu22.04`")
