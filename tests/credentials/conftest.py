"""Credentials-layer fixtures: a private registry with a distinctive password (and an `AWS` user for the
ECR test), one small image pushed to it and to the foundation registries, a fake
`docker-credential-*` helper on PATH, and a recorded `forklift` CLI runner.

Every test gets its own DOCKER_CONFIG (never the developer's ~/.docker) and FORKLIFT_HOME.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixtures import RegistryWithUser, secretscan
from forklift.config import Settings, load_settings
from forklift.credentials import Credentials, StaticKeychain
from forklift.devregistry import LocalRegistry, Pki, install_ca
from forklift.images.build import BuildOptions, build
from forklift.images.imagestore import ImageStore
from forklift.images.push import push, source_from_store

# Distinctive per session: the hygiene test greps everything for these.
PRIVATE_USER = "carol"
PRIVATE_PASSWORD = f"fl-hygiene-{secrets.token_hex(10)}"
ECR_PASSWORD = f"fl-ecr-{secrets.token_hex(10)}"
secretscan.register("the private registry's password", PRIVATE_PASSWORD, user=PRIVATE_USER)
secretscan.register("the stubbed ECR password", ECR_PASSWORD, user="AWS")
ECR_ACCOUNT = "123456789012"
ECR_REGION = "us-west-2"
ECR_HOST = f"{ECR_ACCOUNT}.dkr.ecr.{ECR_REGION}.amazonaws.com"


@dataclass(frozen=True)
class PushedImages:
    digest: str
    private: str  # on private_registry (carol / PRIVATE_PASSWORD, AWS / ECR_PASSWORD)
    basic: str  # on basic_registry (alice)
    token: str  # on token_registry (alice, bearer tokens)


@dataclass(frozen=True)
class EcrFacts:
    account: str = ECR_ACCOUNT
    region: str = ECR_REGION
    host: str = ECR_HOST
    password: str = ECR_PASSWORD  # the private registry's `AWS` user: what the stubbed ECR hands out


@pytest.fixture(scope="session")
def ecr_facts() -> EcrFacts:
    return EcrFacts()


@pytest.fixture(scope="session")
def private_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki):
    registry = LocalRegistry(tmp_path_factory.mktemp("registry-private"), pki, htpasswd_rounds=4,
                             htpasswd={PRIVATE_USER: PRIVATE_PASSWORD, "AWS": ECR_PASSWORD})
    with registry:
        yield RegistryWithUser(registry, PRIVATE_USER, PRIVATE_PASSWORD)


@pytest.fixture(scope="session")
def pushed(tmp_path_factory, pki, private_registry, basic_registry, token_registry, busybox_rootfs) -> PushedImages:
    """One busybox image, pushed once per session to the three registries (under private names)."""
    home = tmp_path_factory.mktemp("credentials-seed-home")
    for registry in (private_registry, basic_registry, token_registry):
        install_ca(pki, home / "certs.d", registry.address)
    store = ImageStore(Settings(home=home))
    image = build(store, [busybox_rootfs], tag="localhost/creds/busybox:1", options=BuildOptions(cmd=["/bin/sh"]))
    targets = {
        "private": f"{private_registry.address}/creds/busybox:1",
        "basic": f"{basic_registry.address}/creds/busybox:1",
        "token": f"{token_registry.address}/private/creds-busybox:1",
    }
    owners = {"private": private_registry, "basic": basic_registry, "token": token_registry}
    for key, target in targets.items():
        keychain = StaticKeychain(Credentials(owners[key].username, owners[key].password))
        asyncio.run(push(source_from_store(store, image.reference), target, store, keychain=keychain))
    return PushedImages(digest=image.digest, **targets)


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG directory of the test's own; returns the config.json path."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    # docker's own credential store (base64 `auths`, as `docker login` writes it): holds passwords by design.
    secretscan.register_input(directory / "config.json")
    return directory / "config.json"


@pytest.fixture
def home(forklift_home: Path, pki: Pki, private_registry) -> Path:
    """FORKLIFT_HOME (empty, trusting the test CA for every test registry)."""
    install_ca(pki, forklift_home / "certs.d", private_registry.address)
    return forklift_home


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> ImageStore:
    return ImageStore(settings)


@pytest.fixture
def helper_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`docker-credential-flfake` on PATH: a file-backed helper speaking docker's protocol.

    Its store is `helper-store.json` and every argv it is run with is appended to `helper-argv.log`,
    both in the test's tmp_path (outside FORKLIFT_HOME).
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    secretscan.register_input(tmp_path / "helper-store.json")  # the helper's keychain: holds them by design
    script = bindir / "docker-credential-flfake"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import json, os, sys
        store = {str(tmp_path / "helper-store.json")!r}
        with open({str(tmp_path / "helper-argv.log")!r}, "a") as log:
            log.write(json.dumps(sys.argv) + "\\n")
        data = json.load(open(store)) if os.path.exists(store) else {{}}
        verb = sys.argv[1]
        def save():
            with open(store, "w") as f:
                json.dump(data, f)
        if verb == "get":
            url = sys.stdin.read().strip()
            if url not in data:
                print("credentials not found in native keychain")
                sys.exit(1)
            print(json.dumps({{"ServerURL": url, **data[url]}}))
        elif verb == "store":
            request = json.load(sys.stdin)
            data[request["ServerURL"]] = {{"Username": request["Username"], "Secret": request["Secret"]}}
            save()
        elif verb == "erase":
            url = sys.stdin.read().strip()
            if data.pop(url, None) is None:
                print("credentials not found in native keychain")
                sys.exit(1)
            save()
        elif verb == "list":
            print(json.dumps({{k: v["Username"] for k, v in data.items()}}))
        else:
            print("unknown verb", file=sys.stderr)
            sys.exit(2)
        """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


@pytest.fixture
def make_handler(tmp_path: Path):
    """`make_handler(name, body)`: a provider module in tmp_path (outside FORKLIFT_HOME) whose
    `handler(event, context)` runs `body`."""
    directory = tmp_path / "providers"
    directory.mkdir()

    def make(name: str, body: str) -> Path:
        path = directory / name
        secretscan.register_input(path)  # a provider's source may return a password literally
        path.write_text("import json, os, sys, time\n\n\ndef handler(event, context):\n"
                        + textwrap.indent(textwrap.dedent(body).strip() + "\n", "    "))
        return path

    return make


@dataclass
class Cli:
    """Runs `python -m forklift …` as a user would; keeps every transcript for the hygiene checks."""

    transcripts: list[str] = field(default_factory=list)

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "forklift", *args], input=stdin, capture_output=True,
                                text=True, env=os.environ.copy(), timeout=120, check=False)
        self.transcripts.append(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise AssertionError(f"forklift {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture
def cli() -> Cli:
    return Cli()
