"""The registry side of the hostile corpus (tests/fixtures/hostile.py) through the client's parsers:
manifests a registry might send, WWW-Authenticate values, image references. Each gets the documented
refusal: RegistryServerError for a malformed descriptor, LookupError when no platform fits,
UnsupportedManifest's media-type rule, InvalidReference."""

from __future__ import annotations

import json

import pytest

from fixtures.hostile import (
    CHALLENGES,
    HOSTILE_INDEXES,
    MALFORMED_MANIFESTS,
    REFERENCES,
    TOLERATED_MANIFESTS,
    WRONG_MEDIA_TYPES,
)
from fixtures.imagetools import keychain, make_layers
from forklift.images.build import build
from forklift.images.pull import pull
from forklift.images.push import push, source_from_store
from forklift.reference import InvalidReference, parse
from forklift.registry import RegistryClient
from forklift.registry.challenge import parse_challenges
from forklift.registry.errors import RegistryError, RegistryServerError, UnsupportedManifest
from forklift.registry.manifest import (
    DEFAULT_PLATFORM,
    DOCKER_SCHEMA1,
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    media_type_of,
    select_platform,
)

DIGEST = "sha256:" + "d" * 64


@pytest.mark.parametrize("name", MALFORMED_MANIFESTS)
def test_a_malformed_manifest_is_the_registrys_error(name: str) -> None:
    manifest = Manifest(MALFORMED_MANIFESTS[name], OCI_MANIFEST, DIGEST)
    with pytest.raises(RegistryServerError) as excinfo:
        _ = manifest.config, manifest.layers
    assert DIGEST in str(excinfo.value)


@pytest.mark.parametrize("name", TOLERATED_MANIFESTS)
def test_a_strange_but_well_formed_manifest_is_read(name: str) -> None:
    manifest = Manifest(TOLERATED_MANIFESTS[name], media_type_of(TOLERATED_MANIFESTS[name], None), DIGEST)
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.config.size == 2 and all(layer.size == 1 for layer in manifest.layers)
    # Annotations are the registry's text: kept as sent, never used as a path.
    assert all(isinstance(layer.annotations, dict) for layer in manifest.layers)


@pytest.mark.parametrize("name", HOSTILE_INDEXES)
def test_a_hostile_index_yields_no_platform_or_the_registrys_error(name: str) -> None:
    index = Manifest(HOSTILE_INDEXES[name], OCI_INDEX, DIGEST)
    with pytest.raises((LookupError, RegistryServerError)):
        select_platform(index, DEFAULT_PLATFORM)


@pytest.mark.parametrize("content_type", WRONG_MEDIA_TYPES)
@pytest.mark.parametrize("name", [*MALFORMED_MANIFESTS, *HOSTILE_INDEXES])
def test_a_wrong_media_type_is_one_the_client_refuses_or_the_bodys_own(content_type: str, name: str) -> None:
    raw = {**MALFORMED_MANIFESTS, **HOSTILE_INDEXES}[name]
    media_type = media_type_of(raw, content_type)
    # The client accepts only these (anything else is UnsupportedManifest, schema 1 its own message).
    accepted = media_type in INDEX_TYPES + IMAGE_TYPES
    assert accepted or media_type in DOCKER_SCHEMA1 or media_type == content_type.split(";")[0].strip()


@pytest.mark.parametrize("header", CHALLENGES, ids=range(len(CHALLENGES)))
def test_a_hostile_challenge_parses_to_challenges(header: str) -> None:
    challenges = parse_challenges(header)
    assert all(c.scheme == c.scheme.lower() for c in challenges)
    assert all(c.realm is None or isinstance(c.realm, str) for c in challenges)


@pytest.mark.parametrize("text", REFERENCES, ids=range(len(REFERENCES)))
def test_a_hostile_reference_is_invalid(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse(text)


async def _hostile_pushes(store, basic_registry, tmp_path):
    """Push an image, then hostile manifests beside it to a real registry; answers the images' names."""
    image = build(store, make_layers(tmp_path, [1000], "hostile"), tag="localhost/hostile:1")
    repo = "hostile/manifests"
    address = basic_registry.address
    await push(source_from_store(store, image.reference), f"{address}/{repo}:image", store,
               keychain=keychain(basic_registry))
    entry = {"mediaType": image.manifest.media_type, "digest": image.digest, "size": len(image.manifest.raw),
             "platform": {"os": "linux", "architecture": "amd64"}}
    inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}).encode()
    negative = json.loads(image.manifest.raw)
    negative["layers"][0]["size"] = -1
    names = {}
    async with RegistryClient(address, keychain=keychain(basic_registry)) as client:
        inner_digest = await client.put_manifest(repo, "inner", inner, OCI_INDEX)
        outer = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {**entry, "mediaType": OCI_INDEX, "digest": inner_digest, "size": len(inner)}]}).encode()
        await client.put_manifest(repo, "nested", outer, OCI_INDEX)
        names["nested"] = f"{address}/{repo}:nested"
        try:
            await client.put_manifest(repo, "negative", json.dumps(negative).encode(), image.manifest.media_type)
            names["negative"] = f"{address}/{repo}:negative"
        except RegistryError:
            pass  # the registry refused it itself: nothing for the client to read
    return names


@pytest.mark.anyio
async def test_hostile_manifests_served_by_a_real_registry(store, basic_registry, tmp_path) -> None:
    """An index of an index (the closest a content-addressed registry comes to a cycle) and, where the
    registry stores one, a layer of negative size: each pull ends in the registry layer's error."""
    names = await _hostile_pushes(store, basic_registry, tmp_path)
    with pytest.raises(UnsupportedManifest, match="nested index"):
        await pull(names["nested"], store, keychain=keychain(basic_registry))
    if "negative" in names:
        with pytest.raises(RegistryServerError, match="malformed layers descriptor"):
            await pull(names["negative"], store, keychain=keychain(basic_registry))
