"""The registry side of the hostile corpus (tests/fixtures/hostile.py) through the client's parsers:
manifests a registry might send, WWW-Authenticate values, image references. Each gets the documented
refusal: RegistryServerError for a malformed descriptor, LookupError when no platform fits,
UnsupportedManifest's media-type rule, InvalidReference."""

from __future__ import annotations

import pytest

from fixtures.hostile import (
    CHALLENGES,
    HOSTILE_INDEXES,
    MALFORMED_MANIFESTS,
    REFERENCES,
    TOLERATED_MANIFESTS,
    WRONG_MEDIA_TYPES,
)
from forklift.reference import InvalidReference, parse
from forklift.registry.challenge import parse_challenges
from forklift.registry.errors import RegistryServerError
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
