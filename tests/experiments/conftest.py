"""Experiments fixtures: a private registry with distinctive credentials (a Docker-ID-style password and a
multi-line GCR-style `_json_key`), busybox images pushed to it (one plain, one that looks CUDA-capable),
and one real `forklift serve` subprocess per module on its own FORKLIFT_HOME, which the real `forklift`
command reaches through FORKLIFT_URL.

The passwords are random per session so the hygiene checks can grep every file for them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from forklift.config import Settings
from forklift.credentials import Credentials, StaticKeychain
from forklift.devregistry import LocalRegistry, Pki, install_ca
from forklift.images.build import BuildOptions, build
from forklift.images.local import ImageStore
from forklift.images.push import push, source_from_store

USER = "dora"
PASSWORD = f"fl-exp-{secrets.token_hex(12)}"
JSON_KEY_USER = "_json_key"
# bcrypt (the registry's htpasswd) only takes 72 bytes: a short key, but multi-line JSON like a real one.
JSON_KEY = '{\n "type": "service_account",\n "private_key_id": "' + secrets.token_hex(6) + '"\n}'
REGION = "us-east-1"


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ExpServer:
    home: Path
    url: str = ""
    process: subprocess.Popen | None = None

    def env(self, **extra: str) -> dict[str, str]:
        docker_config = self.home.parent / "docker-config"
        docker_config.mkdir(exist_ok=True)
        return dict(os.environ, FORKLIFT_HOME=str(self.home), FORKLIFT_URL=self.url, DOCKER_CONFIG=str(docker_config),
                    AWS_ACCESS_KEY_ID="AKIDFORKLIFTTEST", AWS_SECRET_ACCESS_KEY="forklift-test-secret",
                    AWS_DEFAULT_REGION=REGION, **extra)

    def forklift(self, *args: str, input: str | None = None, timeout: float = 120,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "forklift", *args], capture_output=True, text=True,
                              input=input, env=env or self.env(), timeout=timeout, check=False)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "forklift", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env())

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="AKIDFORKLIFTTEST", aws_secret_access_key="forklift-test-secret",
                            config=Config(retries={"max_attempts": 1}))

    def start(self) -> ExpServer:
        with open(self.home / "serve.log", "a") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "forklift", "serve", "--port", "0"],
                                            env=self.env(), stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"forklift serve exited: {(self.home / 'serve.log').read_text()[-3000:]}")
            try:
                self.url = json.loads((self.home / "server.json").read_text())["url"]
                return self
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise RuntimeError("forklift serve did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def remove_containers(home: Path) -> None:
    from forklift.runtime import RuncRuntime

    runtime = RuncRuntime()
    for job in (home / "jobs").glob("*"):
        meta = job / "container" / "container.json"
        if meta.exists():
            handle = runtime.adopt(json.loads(meta.read_text())["name"])
            if handle is not None:
                handle.stop(grace=0.5)


@pytest.fixture(scope="module")
def exp_server(tmp_path_factory, pki: Pki, exp_registry: LocalRegistry, exp_images: ExpImages) -> Iterator[ExpServer]:
    home = tmp_path_factory.mktemp("experiments-serve") / "home"
    home.mkdir()
    install_ca(pki, home / "certs.d", exp_registry.address)
    (home / "config.toml").write_text("stop_grace_seconds = 2\n")
    server = ExpServer(home).start()
    yield server
    server.stop()
    remove_containers(home)


def files_containing(root: Path, needles: list[str]) -> list[str]:
    """Every file under `root` whose bytes contain one of `needles` (plain, or JSON-escaped)."""
    forms = set()
    for needle in needles:
        forms.add(needle.encode())
        forms.add(json.dumps(needle)[1:-1].encode())
        forms.update(line.encode() for line in needle.splitlines() if len(line.strip()) > 12)
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(form in data for form in forms):
                hits.append(str(path))
    return hits
