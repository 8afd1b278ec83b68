"""Properties of manifest parsing: whatever bytes a registry sends, reading a manifest's descriptors
gives descriptors or RegistryServerError, and platform selection gives an entry or LookupError; a
well-formed manifest's descriptors survive `to_json` and back."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from forklift.registry.errors import RegistryServerError
from forklift.registry.manifest import (
    DEFAULT_PLATFORM,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    media_type_of,
    parse_platform,
    platform_of,
    select_platform,
)

DIGEST = "sha256:" + "e" * 64
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
member = st.sampled_from(["mediaType", "digest", "size", "platform", "annotations", "urls", "os", "architecture",
                          "variant", "config", "layers", "manifests", "schemaVersion"])
# JSON shaped like a manifest: the members forklift reads, holding anything at all.
manifest_like = st.recursive(
    json_values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(member, inner, max_size=6),
    max_leaves=30,
)
digests = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h)
platforms = st.builds(Platform, st.sampled_from(["linux", "windows"]),
                      st.sampled_from(["amd64", "arm64", "arm", "386", "ppc64le"]),
                      st.sampled_from([None, "v5", "v6", "v7", "v8"]))


def _read_everything(manifest: Manifest) -> None:
    for read in (lambda: manifest.config, lambda: manifest.layers, lambda: manifest.manifests):
        try:
            read()
        except RegistryServerError:
            pass
    try:
        select_platform(manifest, DEFAULT_PLATFORM)
    except (RegistryServerError, LookupError):
        pass


@given(st.binary(max_size=200))
@example(b"[" * 100_000)
@example(b'{"layers":[{"digest":"sha256:' + b"e" * 64 + b'","size":1e999}]}')
@example(b"\xff\xfe{")
def test_any_bytes_read_as_a_manifest_raise_only_registry_errors(raw: bytes) -> None:
    _read_everything(Manifest(raw, media_type_of(raw, None) or OCI_MANIFEST, DIGEST))


@given(manifest_like, st.sampled_from([OCI_MANIFEST, OCI_INDEX]))
@example({"manifests": [{"digest": DIGEST, "platform": {"os": 1, "architecture": ["a"]}}]}, OCI_INDEX)
@example({"manifests": [{"digest": DIGEST, "platform": "linux"}]}, OCI_INDEX)
@example({"manifests": [{"digest": DIGEST, "annotations": "a"}]}, OCI_INDEX)
@example({"layers": [{"digest": 5}]}, OCI_MANIFEST)
@example({"layers": [{"digest": "../../etc/passwd", "size": 1}]}, OCI_MANIFEST)
def test_any_json_read_as_a_manifest_raises_only_registry_errors(document: object, media_type: str) -> None:
    raw = json.dumps(document).encode()
    _read_everything(Manifest(raw, media_type, DIGEST))


descriptors = st.builds(
    Descriptor,
    media_type=st.sampled_from([OCI_MANIFEST, OCI_LAYER_GZIP, "application/octet-stream"]),
    digest=digests,
    size=st.integers(0, 2**53),
    platform=st.none() | st.fixed_dictionaries({"os": st.just("linux"), "architecture": st.just("amd64")}),
    annotations=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
    urls=st.lists(st.text(max_size=10), max_size=2).map(tuple),
)


@given(st.lists(descriptors, max_size=5), descriptors)
def test_well_formed_descriptors_round_trip(layers: list[Descriptor], config: Descriptor) -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(),
                      "layers": [d.to_json() for d in layers]}).encode()
    manifest = Manifest(raw, media_type_of(raw, None), DIGEST)
    assert manifest.media_type == OCI_MANIFEST and not manifest.is_index
    assert manifest.layers == layers
    assert manifest.config == config


@given(st.lists(st.tuples(platforms, digests), min_size=1, max_size=6), platforms)
def test_platform_selection_picks_a_compatible_entry_or_names_what_there_is(
        entries: list[tuple[Platform, str]], wanted: Platform) -> None:
    index = Manifest(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1,
         "platform": {"os": p.os, "architecture": p.architecture, **({"variant": p.variant} if p.variant else {})}}
        for p, digest in entries]}).encode(), INDEX_TYPES[0], DIGEST)
    wanted = parse_platform(str(wanted))
    try:
        chosen = select_platform(index, wanted)
    except LookupError as exc:
        assert all(str(platform_of(d)) in str(exc) for d in index.manifests)
        assert all(platform_of(d).os != wanted.os or platform_of(d).architecture != wanted.architecture
                   or (platform_of(d).variant and wanted.variant and platform_of(d).variant != wanted.variant)
                   for d in index.manifests)
        return
    got = platform_of(chosen)
    assert got is not None and (got.os, got.architecture) == (wanted.os, wanted.architecture)
    if any(platform_of(d) == wanted for d in index.manifests):
        assert got.variant == wanted.variant or got.variant is None or wanted.variant is None


@given(st.text(max_size=30))
def test_any_platform_text_is_a_platform_or_a_value_error(text: str) -> None:
    try:
        platform = parse_platform(text)
    except ValueError:
        return
    assert parse_platform(str(platform)) == platform


def test_a_negative_size_or_a_bad_digest_is_the_registrys_error() -> None:
    # Regression examples of what the properties found: each was accepted (or escaped as OverflowError).
    for layer in ({"digest": DIGEST, "size": -1}, {"digest": DIGEST, "size": 1e999}, {"digest": "sha256:abc"},
                  {"digest": "md5:" + "e" * 32}, {"digest": DIGEST, "size": True}):
        raw = json.dumps({"layers": [layer]}).encode()
        with pytest.raises(RegistryServerError, match="malformed layers descriptor"):
            _ = Manifest(raw, OCI_MANIFEST, DIGEST).layers
    with pytest.raises(RegistryServerError, match="not JSON"):
        _ = Manifest(b"[" * 100_000, OCI_MANIFEST, DIGEST).json
