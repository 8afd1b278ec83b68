"""Experiments fixtures: a private registry with distinctive credentials (a Docker-ID-style password and a
multi-line GCR-style `_json_key`), busybox images pushed to it (one plain, one that looks CUDA-capable),
and one real `forklift serve` subprocess per module on its own FORKLIFT_HOME, which the real `forklift`
command reaches through FORKLIFT_URL.

"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from experiments_support import JSON_KEY, JSON_KEY_USER, PASSWORD, USER

from fixtures.postgres import Database
from fixtures.serve import ServeProcess, remove_containers
from forklift.config import Settings
from forklift.credentials import Credentials, StaticKeychain
from forklift.devregistry import LocalRegistry, Pki, install_ca
from forklift.images.build import BuildOptions, build
from forklift.images.imagestore import ImageStore
from forklift.images.push import push, source_from_store


@dataclass(frozen=True)
class ExpImages:
    registry: str
    busybox: str  # private: dora / PASSWORD, _json_key / JSON_KEY
    cuda: str  # private, with CUDA_VERSION in its config


@pytest.fixture(scope="session")
def exp_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[LocalRegistry]:
    assert len(JSON_KEY.encode()) <= 72
    registry = LocalRegistry(tmp_path_factory.mktemp("registry-experiments"), pki, htpasswd_rounds=4,
                             htpasswd={USER: PASSWORD, JSON_KEY_USER: JSON_KEY})
    with registry:
        yield registry


@pytest.fixture(scope="session")
def exp_images(tmp_path_factory, pki: Pki, exp_registry: LocalRegistry, busybox_rootfs: Path) -> ExpImages:
    home = tmp_path_factory.mktemp("experiments-seed-home")
    install_ca(pki, home / "certs.d", exp_registry.address)
    store = ImageStore(Settings(home=home))
    keychain = StaticKeychain(Credentials(USER, PASSWORD))
    refs = {}
    for key, env in (("busybox", ()), ("cuda", ("CUDA_VERSION=12.2.0", "NVIDIA_VISIBLE_DEVICES=all"))):
        ref = f"{exp_registry.address}/team/{key}-train:1"
        image = build(store, [busybox_rootfs], tag=ref, options=BuildOptions(cmd=["/bin/sh"], env=env))
        asyncio.run(push(source_from_store(store, image.reference), ref, store, keychain=keychain))
        refs[key] = ref
    return ExpImages(exp_registry.address, **refs)


@pytest.fixture(scope="module")
def exp_server(tmp_path_factory, pki: Pki, exp_registry: LocalRegistry,
               exp_images: ExpImages, database: Database) -> Iterator[ServeProcess]:
    """The module's server, on SQLite and on PostgreSQL (`database`: each test runs on both)."""
    home = tmp_path_factory.mktemp("experiments-serve") / "home"
    home.mkdir()
    install_ca(pki, home / "certs.d", exp_registry.address)
    (home / "config.toml").write_text("stop_grace_seconds = 2\n")
    docker_config = home.parent / "docker-config"
    docker_config.mkdir()
    server = ServeProcess(home, extra_env={"DOCKER_CONFIG": str(docker_config)}, database=database).start()
    yield server
    server.stop()
    remove_containers(home)
