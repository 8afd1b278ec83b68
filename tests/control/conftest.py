"""Training-job fixtures: one real `forklift serve` subprocess (its own FORKLIFT_HOME, trusting the
test CA), training images pushed to the TLS registries, credentials-provider functions registered
with the real CLI.

The server is shared by the module's tests (the image pull is paid once); every container a job
started is removed at the end, whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from training_support import TRAIN_PY, Images

from fixtures.imagetools import build_and_push, cached_python_rootfs, trusting_store
from fixtures.serve import ServeProcess, remove_containers
from forklift.devregistry import install_ca
from forklift.images.build import BuildOptions


@pytest.fixture(scope="session")
def training_images(tmp_path_factory, pki, basic_registry, busybox_rootfs) -> Images:
    store = trusting_store(tmp_path_factory, pki, basic_registry, "control-image-home")
    code = tmp_path_factory.mktemp("train-code")
    (code / "opt" / "program").mkdir(parents=True)
    (code / "opt" / "program" / "train.py").write_text(TRAIN_PY)
    python_ref = f"{basic_registry.address}/docker-local/my-training-image:1.0"
    python = build_and_push(store, basic_registry, [cached_python_rootfs(), code], python_ref,
                            BuildOptions(entrypoint=["python3", "/opt/program/train.py"]))
    busybox_ref = f"{basic_registry.address}/docker-local/busybox-train:1"
    build_and_push(store, basic_registry, [busybox_rootfs], busybox_ref, BuildOptions(cmd=["/bin/sh"]))
    return Images(python_ref, busybox_ref, python.digest)


@pytest.fixture(scope="module")
def host_files(tmp_path_factory) -> Path:
    """The server's one file root: the only host directory its jobs' file:// URIs may name."""
    return tmp_path_factory.mktemp("host-files")


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, basic_registry, token_registry, training_images,
           host_files, database) -> Iterator[ServeProcess]:
    """The module's server, on SQLite and on PostgreSQL (`database`: each test runs on both)."""
    home = tmp_path_factory.mktemp("control-serve-home")
    for registry in (basic_registry, token_registry):
        install_ca(pki, home / "certs.d", registry.address)
    (home / "config.toml").write_text(f'stop_grace_seconds = 5\nfile_roots = ["{host_files}"]\n')
    running = ServeProcess(home, database=database)
    running.register_function("registry-creds", basic_registry.username, basic_registry.password)
    running.register_function("wrong-creds", basic_registry.username, "not-the-password")
    (home / "buckets" / "your-training-data-bucket" / "training-data-folder").mkdir(parents=True)
    (home / "buckets" / "your-output-data-bucket").mkdir(parents=True)
    running.start()
    yield running
    running.stop()
    remove_containers(home)


@pytest.fixture
def sagemaker(server: ServeProcess):
    return server.client("sagemaker")
