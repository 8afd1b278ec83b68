"""Root fixtures: real registries (CNCF distribution), a token server, a fault proxy, blob storage.

Servers are session-scoped and shared by every test module; the objects that tests program
(token server switches, proxy faults, storage) are reset around each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fixtures import RegistryWithUser, secretscan
from fixtures.faultproxy import FaultProxy, StorageServer
from fixtures.tokenserver import TokenServer
from forklift.devregistry import LocalRegistry, Pki, create_pki, install_ca

BASIC_USER = ("alice", "wonderland-basic-9f2c")
TOKEN_USER = ("alice", "wonderland-token-5a1e")
pytest_plugins = ["pytester", "fixtures.secretscan", "fixtures.postgres", "fixtures.kubeemulator"]

# Property tests: modest for a 2-core CI machine; `HYPOTHESIS_PROFILE=ci` (set by .ci/run) makes the
# examples the same on every run and keeps no example database; `thorough` tries 20 times as many.
settings.register_profile("default", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("default"), derandomize=True, database=None)
settings.register_profile("thorough", settings.get_profile("default"), max_examples=3000)  # by hand, to hunt
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# distribution verifies bcrypt on every request; the minimum cost keeps a pull from paying ~50 ms
# per request without changing what is tested ($2b$ hashes, wrong password refused).
HTPASSWD_ROUNDS = 4
# The client side of every `forklift serve` the tests start (tests/api/conftest.py, fixtures/serve.py).
API_CLIENT_SECRET = "forklift-test-secret"

secretscan.register("the basic registry's password", BASIC_USER[1], user=BASIC_USER[0])
secretscan.register("the token server's password", TOKEN_USER[1], user=TOKEN_USER[0])
secretscan.register("the API clients' AWS secret access key", API_CLIENT_SECRET)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return create_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[RegistryWithUser]:
    user, password = BASIC_USER
    registry = LocalRegistry(tmp_path_factory.mktemp("registry-basic"), pki,
                             htpasswd={user: password}, htpasswd_rounds=HTPASSWD_ROUNDS)
    with registry:
        yield RegistryWithUser(registry, user, password)


@pytest.fixture(scope="session")
def token_server(pki: Pki) -> Iterator[TokenServer]:
    user, password = TOKEN_USER
    with TokenServer(pki, {user: password}) as server:
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki,
                   token_server: TokenServer) -> Iterator[RegistryWithUser]:
    user, password = TOKEN_USER
    with LocalRegistry(tmp_path_factory.mktemp("registry-token"), pki, token_auth=token_server.auth) as registry:
        yield RegistryWithUser(registry, user, password)


@pytest.fixture(autouse=True)
def _fresh_token_server(request: pytest.FixtureRequest) -> Iterator[None]:
    # Only when the test uses it: counting token fetches must start from zero in every test.
    if "token_server" not in request.fixturenames:
        yield
        return
    server: TokenServer = request.getfixturevalue("token_server")
    server.reset()
    yield
    server.reset()


@pytest.fixture(scope="session")
def _storage_server(pki: Pki) -> Iterator[StorageServer]:
    with StorageServer(pki) as server:
        yield server


@pytest.fixture
def storage_server(_storage_server: StorageServer) -> Iterator[StorageServer]:
    _storage_server.reset()
    yield _storage_server
    _storage_server.reset()


@pytest.fixture(scope="session")
def _fault_proxy(pki: Pki, basic_registry: RegistryWithUser) -> Iterator[FaultProxy]:
    with FaultProxy(basic_registry.registry, pki) as proxy:
        yield proxy


@pytest.fixture
def fault_proxy(_fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The proxy in front of basic_registry (same user and password), with no fault armed."""
    _fault_proxy.reset()
    yield _fault_proxy
    _fault_proxy.reset()


@pytest.fixture
def forklift_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: Pki,
                  basic_registry: RegistryWithUser, token_registry: RegistryWithUser,
                  token_server: TokenServer, _fault_proxy: FaultProxy,
                  _storage_server: StorageServer) -> Path:
    """An empty FORKLIFT_HOME that trusts the test CA for every test server."""
    home = tmp_path / "forklift-home"
    home.mkdir()
    monkeypatch.setenv("FORKLIFT_HOME", str(home))
    for address in (basic_registry.address, token_registry.address, token_server.address,
                    _fault_proxy.address, _storage_server.address):
        install_ca(pki, home / "certs.d", address)
    return home


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal rootfs: /bin/busybox (static), /bin/sh -> busybox, /etc/motd = "hello"."""
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        pytest.fail("/bin/busybox missing: install Debian's busybox-static package")
    root = tmp_path_factory.mktemp("busybox-rootfs")
    (root / "bin").mkdir()
    (root / "etc").mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "etc" / "motd").write_text("hello\n")
    return root

