"""Pull and push against real CNCF distribution registries (TLS with a test CA; htpasswd and token auth)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.imagetools import keychain, make_layers
from forklift.config import load_settings
from forklift.credentials import Credentials, StaticKeychain
from forklift.images.build import BuildOptions, build
from forklift.images.imagestore import ImageStore
from forklift.images.pull import pull
from forklift.images.push import push, source_from_store
from forklift.reference import parse
from forklift.registry import (
    AuthenticationFailed,
    NotFound,
    PlatformNotFound,
    RegistryClient,
    TLSError,
    parse_platform,
)
from forklift.registry.manifest import OCI_INDEX

pytestmark = pytest.mark.anyio


async def push_image(store, image, target, registry, **kwargs):
    return await push(source_from_store(store, image.reference), target, store, keychain=keychain(registry), **kwargs)


def fresh_store(tmp_path: Path, monkeypatch, name: str) -> ImageStore:
    """A second FORKLIFT_HOME with the same trust settings, so a pull starts from an empty cache."""
    home = Path(load_settings().home)
    other = tmp_path / name
    other.mkdir()
    (other / "certs.d").symlink_to(home / "certs.d")
    monkeypatch.setenv("FORKLIFT_HOME", str(other))
    return ImageStore(load_settings())


async def test_push_then_pull_round_trip_basic_auth(store, busybox_image, basic_registry, tmp_path, monkeypatch):
    target = f"{basic_registry.address}/roundtrip/busybox:1.0"
    pushed = await push_image(store, busybox_image, target, basic_registry)
    assert pushed.digest == busybox_image.digest
    assert set(pushed.statuses.values()) <= {"uploaded", "exists"}

    other = fresh_store(tmp_path, monkeypatch, "home2")
    result = await pull(target, other, keychain=keychain(basic_registry))
    assert result.image.digest == busybox_image.digest
    assert result.fetched_blobs == 2 and result.cached_blobs == 0
    for layer in result.image.layers:
        assert other.blobs.has(layer.digest)
    config = other.config(result.image)
    assert config["config"]["Env"][-1] == "FOO=bar"
    assert other.get(target).digest == busybox_image.digest

    again = await pull(target, other, keychain=keychain(basic_registry))
    assert again.fetched_blobs == 0 and again.cached_blobs == 2


async def test_token_auth_round_trip_caches_tokens(store, busybox_image, token_registry, token_server):
    target = f"{token_registry.address}/private/busybox:2"
    await push_image(store, busybox_image, target, token_registry)
    push_fetches = len(token_server.fetches())
    assert push_fetches >= 1
    token_server.reset()
    async with RegistryClient(token_registry.address, keychain=keychain(token_registry)) as client:
        resolved = await client.resolve(parse(target))
        for _ in range(3):
            await client.head_manifest("private/busybox", "2")
        assert await client.list_tags("private/busybox") == ["2"]
    assert resolved.digest == busybox_image.digest
    fetches = token_server.fetches()
    assert len(fetches) == 1, fetches  # one token for repository:private/busybox:pull, then cached
    assert fetches[0].username == token_registry.username
    assert fetches[0].method == "POST" and fetches[0].grant_type == "password"


async def test_token_endpoint_without_post_falls_back_to_get(store, busybox_image, token_registry, token_server):
    target = f"{token_registry.address}/private/fallback:1"
    await push_image(store, busybox_image, target, token_registry)
    token_server.reset()
    token_server.post_supported = False
    async with RegistryClient(token_registry.address, keychain=keychain(token_registry)) as client:
        await client.get_manifest("private/fallback", "1")
    methods = [(r.method, r.status) for r in token_server.requests]
    assert methods == [("POST", 405), ("GET", 200)]
    assert token_server.fetches()[0].basic


async def test_anonymous_pull_from_token_registry(store, busybox_image, token_registry, token_server):
    await push_image(store, busybox_image, f"{token_registry.address}/public/busybox:latest", token_registry)
    token_server.reset()
    result = await pull(f"{token_registry.address}/public/busybox", store)
    assert result.image.digest == busybox_image.digest
    assert all(r.username is None and not r.basic for r in token_server.fetches())

    with pytest.raises(AuthenticationFailed) as info:
        await pull(f"{token_registry.address}/private/busybox:2", store)
    assert token_registry.address in str(info.value) and "no credentials" in str(info.value)


async def test_wrong_password_is_a_clear_error_without_the_password(store, basic_registry, token_registry):
    for registry in (basic_registry, token_registry):
        bad = StaticKeychain(Credentials(registry.username, "not-the-password-7731"))
        with pytest.raises(AuthenticationFailed) as info:
            await pull(f"{registry.address}/any/image:1", store, keychain=bad)
        message = str(info.value)
        assert f"authentication to {registry.address} failed for user {registry.username}: 401" in message
        assert "not-the-password-7731" not in message


async def test_untrusted_certificate_names_registry_and_certs_dir(store, basic_registry, forklift_home):
    import shutil

    shutil.rmtree(forklift_home / "certs.d" / basic_registry.address)
    with pytest.raises(TLSError) as info:
        await pull(f"{basic_registry.address}/any/image:1", ImageStore(load_settings()),
                   keychain=keychain(basic_registry))
    message = str(info.value)
    assert basic_registry.address in message
    assert str(forklift_home / "certs.d" / basic_registry.address / "ca.crt") in message


async def test_insecure_registry_skips_verification_only_when_listed(basic_registry, forklift_home, busybox_image,
                                                                     store):
    import shutil

    await push_image(store, busybox_image, f"{basic_registry.address}/insecure/busybox:1", basic_registry)
    shutil.rmtree(forklift_home / "certs.d" / basic_registry.address)
    (forklift_home / "config.toml").write_text(f'insecure_registries = ["{basic_registry.address}"]\n')
    result = await pull(f"{basic_registry.address}/insecure/busybox:1", ImageStore(load_settings()),
                        keychain=keychain(basic_registry))
    assert result.image.digest == busybox_image.digest


async def test_missing_tag_and_missing_repository(store, busybox_image, basic_registry):
    await push_image(store, busybox_image, f"{basic_registry.address}/present/busybox:1", basic_registry)
    with pytest.raises(NotFound, match="manifest unknown") as info:
        await pull(f"{basic_registry.address}/present/busybox:nope", store, keychain=keychain(basic_registry))
    assert "present/busybox:nope" in str(info.value)
    with pytest.raises(NotFound):
        await pull(f"{basic_registry.address}/absent/repo:1", store, keychain=keychain(basic_registry))


async def test_multi_platform_index(store, basic_registry, tmp_path):
    amd = build(store, make_layers(tmp_path, [1000], "amd"), tag="localhost/mp:amd")
    arm = build(store, make_layers(tmp_path, [1000], "arm"), tag="localhost/mp:arm")
    repo = "multi/platform"
    descriptors = []
    async with RegistryClient(basic_registry.address, keychain=keychain(basic_registry)) as client:
        for image, arch, variant in ((amd, "amd64", None), (arm, "arm64", "v8")):
            await push_image(store, image, f"{basic_registry.address}/{repo}:{arch}", basic_registry)
            platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
            descriptors.append({"mediaType": image.manifest.media_type, "digest": image.digest,
                                "size": len(image.manifest.raw), "platform": platform})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}).encode()
        await client.put_manifest(repo, "multi", index, OCI_INDEX)

    target = f"{basic_registry.address}/{repo}:multi"
    default = await pull(target, store, keychain=keychain(basic_registry))
    assert default.image.digest == amd.digest
    assert default.image.record.index_digest is not None and default.image.record.platform == "linux/amd64"
    chosen = await pull(target, store, keychain=keychain(basic_registry), platform=parse_platform("linux/arm64"))
    assert chosen.image.digest == arm.digest
    with pytest.raises(PlatformNotFound) as info:
        await pull(target, store, keychain=keychain(basic_registry), platform=parse_platform("linux/s390x"))
    assert "linux/amd64" in str(info.value) and "linux/arm64" in str(info.value)


async def test_pull_by_digest_and_tag_at_digest(store, busybox_image, basic_registry):
    await push_image(store, busybox_image, f"{basic_registry.address}/pinned/busybox:1", basic_registry)
    by_digest = await pull(f"{basic_registry.address}/pinned/busybox@{busybox_image.digest}", store,
                           keychain=keychain(basic_registry))
    assert by_digest.image.digest == busybox_image.digest
    both = await pull(f"{basic_registry.address}/pinned/busybox:ignored@{busybox_image.digest}", store,
                      keychain=keychain(basic_registry))
    assert both.image.digest == busybox_image.digest
    async with RegistryClient(basic_registry.address, keychain=keychain(basic_registry)) as client:
        head = await client.head_manifest("pinned/busybox", "1")
    assert head.digest == busybox_image.digest


async def test_chunked_upload_cross_repo_mount_and_existing_blobs(store, basic_registry, tmp_path):
    image = build(store, make_layers(tmp_path, [300_000, 50_000], "chunky"), tag="localhost/chunky:1")
    first = await push_image(store, image, f"{basic_registry.address}/team/base:1", basic_registry,
                             chunk_size=64 * 1024)
    assert set(first.statuses.values()) == {"uploaded"}
    again = await push_image(store, image, f"{basic_registry.address}/team/base:2", basic_registry)
    assert set(again.statuses.values()) == {"exists"}
    mounted = await push_image(store, image, f"{basic_registry.address}/team/app:1", basic_registry)
    assert set(mounted.statuses.values()) == {"mounted"}
    async with RegistryClient(basic_registry.address, keychain=keychain(basic_registry)) as client:
        assert sorted(await client.list_tags("team/base")) == ["1", "2"]
        assert (await client.head_manifest("team/app", "1")).digest == image.digest


async def test_pull_and_prepare_unpacks_while_downloading(store, basic_registry, tmp_path):
    from forklift.images.rootfs import pull_and_prepare, rootfs_cache

    layers = make_layers(tmp_path, [200_000, 150_000, 100_000], "stream")
    image = build(store, layers, tag="localhost/stream:1", options=BuildOptions(cmd=["/bin/true"]))
    target = f"{basic_registry.address}/stream/img:1"
    await push_image(store, image, target, basic_registry)
    store.remove(target)
    store.remove("localhost/stream:1")
    store.prune()

    prepared = await pull_and_prepare(target, store, keychain=keychain(basic_registry))
    assert prepared.image.digest == image.digest
    assert prepared.config["Cmd"] == ["/bin/true"]
    for i, size in enumerate([200_000, 150_000, 100_000]):
        assert (prepared.rootfs / "data" / f"stream-{i}.bin").stat().st_size == size
    assert rootfs_cache(store).list() == [f"sha256:{prepared.rootfs.name}"]

    with pytest.raises(NotFound):
        await pull_and_prepare(f"{basic_registry.address}/stream/img:missing", store, keychain=keychain(basic_registry))
