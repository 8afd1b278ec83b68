import json

import pytest

from forklift.registry.manifest import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    media_type_of,
    parse_platform,
    select_platform,
)


def index(*platforms, attestation=False):
    manifests = []
    for i, p in enumerate(platforms):
        os_, arch, *variant = p.split("/")
        plat = {"os": os_, "architecture": arch}
        if variant:
            plat["variant"] = variant[0]
        manifests.append({"mediaType": OCI_MANIFEST, "digest": f"sha256:{i:064x}", "size": 1, "platform": plat})
    if attestation:
        manifests.append({"mediaType": OCI_MANIFEST, "digest": "sha256:" + "f" * 64, "size": 1,
                          "platform": {"os": "unknown", "architecture": "unknown"},
                          "annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    return Manifest(json.dumps({"schemaVersion": 2, "manifests": manifests}).encode(), OCI_INDEX, "sha256:" + "e" * 64)


def test_exact_platform_wins():
    chosen = select_platform(index("linux/arm64/v8", "linux/amd64"), parse_platform("linux/amd64"))
    assert chosen.digest.endswith("1")


def test_arm64_means_arm64_v8():
    chosen = select_platform(index("linux/amd64", "linux/arm64/v8"), parse_platform("linux/arm64"))
    assert chosen.digest.endswith("1")


def test_arm_v7_falls_back_to_v6():
    chosen = select_platform(index("linux/arm/v5", "linux/arm/v6"), parse_platform("linux/arm/v7"))
    assert chosen.digest.endswith("1")


def test_no_match_lists_available_platforms_and_skips_attestations():
    with pytest.raises(LookupError) as info:
        select_platform(index("linux/amd64", "linux/arm64/v8", attestation=True), parse_platform("linux/s390x"))
    message = str(info.value)
    assert "linux/s390x" in message and "linux/amd64" in message and "linux/arm64" in message
    assert "unknown" not in message


def test_invalid_platform_text():
    with pytest.raises(ValueError, match="os/arch"):
        parse_platform("amd64")


def test_media_type_from_header_then_body_then_shape():
    body = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
    assert media_type_of(body, f"{DOCKER_LIST}; charset=utf-8") == DOCKER_LIST
    assert media_type_of(body, "application/json") == OCI_MANIFEST  # umoci omits mediaType
    assert media_type_of(json.dumps({"mediaType": OCI_INDEX}).encode(), None) == OCI_INDEX



@pytest.mark.parametrize("raw,member", [
    (b"not json", "config"), (b"[1, 2]", "layers"), (b'{"config": 3, "layers": []}', "config"),
    (b'{"config": {"mediaType": "x"}, "layers": []}', "config"), (b'{"layers": [{"size": 1}]}', "layers"),
    (b'{"manifests": [null]}', "manifests"),
])
def test_a_malformed_manifest_is_the_registrys_error(raw, member):
    from forklift.registry.errors import RegistryServerError
    from forklift.registry.manifest import OCI_MANIFEST, Manifest

    manifest = Manifest(raw, OCI_MANIFEST, "sha256:" + "0" * 64)
    with pytest.raises(RegistryServerError, match="sha256:0"):
        getattr(manifest, member)
