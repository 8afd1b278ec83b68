"""Stalls, drips, outages and changed certificates, with small timeouts from config.toml.

Through the HTTP fault proxy (tests/fixtures/faultproxy.py: stalls and drips of one blob, 5xx and
429 answers) and the TCP one (tests/fixtures/tcpfault.py: refused connections, silence, another
certificate), both in front of the real basic-auth registry. The waits are short (1 s timeouts,
a few seconds of retry budget), so each test asserts what happened and the message, and bounds
its time only loosely: enough to tell "waited the budget" from "hung for minutes".
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.imagetools import keychain, make_layers
from fixtures.tcpfault import TcpFaultProxy
from forklift.config import load_settings
from forklift.devregistry import LocalRegistry, create_pki, install_ca
from forklift.images.build import build
from forklift.images.imagestore import ImageStore
from forklift.images.progress import NoProgress
from forklift.images.pull import pull
from forklift.images.push import push, source_from_store
from forklift.registry import RegistryClient, RegistryServerError
from forklift.registry.errors import RegistryStalled, RegistryUnreachable, TLSError, TooManyRequests

pytestmark = pytest.mark.anyio

BUDGET = 3  # registry_retry_seconds in these tests
QUICK = f"""
registry_connect_timeout_seconds = 1
registry_first_byte_timeout_seconds = 1
registry_read_timeout_seconds = 1
registry_retry_seconds = {BUDGET}
"""
BOUND = 5 * BUDGET + 10  # far below the minutes a hang takes, far above the budget waited out


class Retries(NoProgress):
    """Progress that keeps what `retrying` said."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def retrying(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture
def store(forklift_home: Path) -> ImageStore:
    (forklift_home / "config.toml").write_text(QUICK)
    return ImageStore(load_settings())


@pytest.fixture
async def image(store, basic_registry, fault_proxy, tmp_path):
    """An image with a ~200 KB and a ~2.5 MB layer in basic_registry (pushed through the proxy), not
    in the store; returns (repository:tag, image)."""
    built = build(store, make_layers(tmp_path, [200_000, 2_500_000], tmp_path.name), tag="localhost/stalls:1")
    name = f"stalls/{tmp_path.name.lower().replace('_', '-')}:1"
    await push(source_from_store(store, built.reference), f"{fault_proxy.address}/{name}", store,
               keychain=keychain(basic_registry))
    for descriptor in [built.config_descriptor, *built.layers]:
        store.blobs.delete(descriptor.digest)
    store.records.remove(f"{fault_proxy.address}/{name}")
    fault_proxy.reset()
    return name, built


@pytest.fixture
def tcp(basic_registry, pki, forklift_home) -> Iterator[TcpFaultProxy]:
    with TcpFaultProxy(basic_registry.registry.port) as proxy:
        install_ca(pki, forklift_home / "certs.d", proxy.address)
        yield proxy


async def timed_pull(reference: str, store: ImageStore, basic_registry, progress=None):
    started = time.monotonic()
    try:
        result = await pull(reference, store, keychain=keychain(basic_registry), progress=progress)
    except Exception as exc:  # noqa: BLE001 - the test looks at what it was
        return exc, time.monotonic() - started
    return result, time.monotonic() - started


# -- HTTP-level faults ----------------------------------------------------------------------------

async def test_a_blob_that_never_starts_fails_saying_no_answer_came(store, basic_registry, fault_proxy, image):
    name, built = image
    victim = built.layers[0].digest
    fault_proxy.stall_blob(victim, after=None, times=None)
    error, took = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry)
    assert isinstance(error, RegistryStalled), error
    assert f"{fault_proxy.address} sent no answer for blob {victim} within 1 s " \
           "(registry_first_byte_timeout_seconds)" in str(error)
    assert f"retried for {BUDGET} s (registry_retry_seconds)" in str(error)
    assert fault_proxy.blob_gets[victim] >= 2, "a stall from the first byte was not retried"
    assert took < BOUND
    assert not store.blobs.has(victim)


async def test_a_stall_mid_blob_is_resumed_where_it_stopped(store, basic_registry, fault_proxy, image):
    name, built = image
    victim = built.layers[1].digest
    # Past the first 1 MiB: a download keeps whole blocks it has read (download.READ_BLOCK).
    fault_proxy.stall_blob(victim, after=1_500_000, times=1)
    progress = Retries()
    result, took = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry, progress)
    assert not isinstance(result, Exception), result
    assert store.blobs.has(victim)
    resumed = [r for r in fault_proxy.requests if victim in r[1] and r[2] == 206]
    assert resumed, f"no ranged resumption in {fault_proxy.requests}"
    assert any("no data for 1 s (registry_read_timeout_seconds)" in m and "retrying" in m
               for m in progress.messages), progress.messages


async def test_a_blob_stalled_for_good_fails_saying_it_stalled(store, basic_registry, fault_proxy, image):
    name, built = image
    victim = built.layers[0].digest
    fault_proxy.stall_blob(victim, after=70_000, times=None)
    error, took = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry)
    assert isinstance(error, RegistryStalled), error
    assert str(error).startswith(f"the download of blob {victim} from {fault_proxy.address} stalled: no data for "
                                 "1 s (registry_read_timeout_seconds); retried for 3 s (registry_retry_seconds)")
    assert took < BOUND


async def test_a_slow_drip_is_cut_off_by_the_deadline_for_its_size(store, basic_registry, fault_proxy, image):
    name, built = image
    victim = built.layers[0].digest
    fault_proxy.drip_blob(victim, piece=256, interval=0.2)  # ~1.3 KB/s: 200 KB would take minutes
    error, took = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry)
    assert isinstance(error, RegistryStalled), error
    assert f"the download of blob {victim} from {fault_proxy.address} is too slow" in str(error)
    assert took < BOUND


async def test_a_body_read_into_memory_is_cut_off_by_the_deadline_for_its_size(store, basic_registry, fault_proxy,
                                                                              image):
    name, built = image
    victim = built.config_descriptor.digest
    # A few bytes now and then never trip the 1 s between reads: only a deadline for the whole body ends it.
    fault_proxy.drip_blob(victim, piece=32, interval=0.3)
    started = time.monotonic()
    async with RegistryClient(fault_proxy.address, keychain=keychain(basic_registry)) as client:
        with pytest.raises(RegistryStalled) as info:
            await client.get_blob_bytes(name.split(":")[0], built.config_descriptor)
    error, took = info.value, time.monotonic() - started
    assert f"{fault_proxy.address} is too slow answering blob {victim}" in str(error)
    assert "registry_read_timeout_seconds" in str(error)
    assert took < BOUND


async def test_a_burst_of_5xx_is_waited_out(store, basic_registry, fault_proxy, image):
    name, built = image
    fault_proxy.fail(503, times=3, path_contains="/manifests/")
    progress = Retries()
    result, _ = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry, progress)
    assert not isinstance(result, Exception), result
    assert result.image.digest == built.digest
    assert len(progress.messages) == 3 and "answered 503" in progress.messages[0]


async def test_retry_after_is_capped_by_the_budget(store, basic_registry, fault_proxy, image):
    name, built = image
    fault_proxy.fail(500, times=None, path_contains="/manifests/", retry_after=60)
    error, took = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry)
    assert isinstance(error, RegistryServerError) and "answered 500" in str(error), error
    assert took < BOUND, f"waited {took:.1f} s: Retry-After: 60 was not capped by the {BUDGET} s budget"

    fault_proxy.reset()
    fault_proxy.throttle(times=1, retry_after=60)  # once: the capped wait is enough
    result, took = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry)
    assert not isinstance(result, Exception), result
    assert took < BOUND


async def test_rate_limited_past_the_budget_fails_as_rate_limited(store, basic_registry, fault_proxy, image):
    name, _ = image
    fault_proxy.throttle(times=None, retry_after=1)
    error, took = await timed_pull(f"{fault_proxy.address}/{name}", store, basic_registry)
    assert isinstance(error, TooManyRequests) and "429" in str(error), error
    assert took < BOUND


# -- TCP-level faults -----------------------------------------------------------------------------

async def test_a_registry_down_for_a_moment_mid_blob_is_waited_out(store, basic_registry, image, tcp):
    name, built = image
    tcp.down_after(100_000, seconds=1.5)  # well inside the first layer: cut, refused, then back
    progress = Retries()
    result, _ = await timed_pull(f"{tcp.address}/{name}", store, basic_registry, progress)
    assert not isinstance(result, Exception), result
    assert result.image.digest == built.digest
    assert tcp.outages == 1
    assert any(f"registry {tcp.address} unavailable (connection refused); retrying, up to" in m
               for m in progress.messages), progress.messages


async def test_a_registry_down_past_the_budget_fails_saying_so(store, basic_registry, image, tcp):
    name, _ = image
    tcp.down_for(60)
    error, took = await timed_pull(f"{tcp.address}/{name}", store, basic_registry)
    assert isinstance(error, RegistryUnreachable), error
    assert f"cannot connect to registry {tcp.address}" in str(error) and "connection refused" in str(error)
    assert f"retried for {BUDGET} s (registry_retry_seconds) without success" in str(error)
    assert took < BOUND


async def test_a_registry_that_takes_connections_and_says_nothing(store, basic_registry, image, tcp):
    name, _ = image
    tcp.silent()
    error, took = await timed_pull(f"{tcp.address}/{name}", store, basic_registry)
    assert isinstance(error, RegistryUnreachable), error
    assert f"could not connect to registry {tcp.address} within 1 s (registry_connect_timeout_seconds)" \
        in str(error)
    assert tcp.connections >= 2, "silence was not retried"
    assert took < BOUND


async def test_a_certificate_changed_mid_pull_fails_at_once(store, basic_registry, image, tcp, tmp_path):
    name, built = image
    stranger = create_pki(tmp_path / "stranger-pki")  # a CA the store's home does not trust
    tcp.down_after(100_000, seconds=0, then_impostor=stranger)
    error, took = await timed_pull(f"{tcp.address}/{name}", store, basic_registry)
    assert isinstance(error, TLSError), error
    assert f"TLS certificate of {tcp.address} is not trusted" in str(error)
    # Each download cut by the change meets the impostor once; none of them tries it again.
    assert 1 <= tcp.impostor_connections <= len(built.layers) + 1, tcp.impostor_connections
    assert not store.blobs.has(built.layers[0].digest)


@pytest.fixture
def token_tcp(token_server, pki, forklift_home) -> Iterator[TcpFaultProxy]:
    """A TCP proxy in front of the token server."""
    with TcpFaultProxy(int(token_server.address.rsplit(":", 1)[1])) as proxy:
        install_ca(pki, forklift_home / "certs.d", proxy.address)
        yield proxy


@pytest.fixture
async def behind_token_proxy(token_tcp, token_server, token_registry, pki, store, tmp_path, forklift_home):
    """A registry whose token realm is the proxy, with a small image in it; returns its reference."""
    auth = dataclasses.replace(token_server.auth, realm=f"https://{token_tcp.address}/token")
    with LocalRegistry(tmp_path / "registry", pki, token_auth=auth) as registry:
        install_ca(pki, forklift_home / "certs.d", registry.address)
        built = build(store, make_layers(tmp_path, [50_000], "token"), tag="localhost/token-down:1")
        reference = f"{registry.address}/token/down:1"
        await push(source_from_store(store, built.reference), reference, store, keychain=keychain(token_registry))
        for descriptor in [built.config_descriptor, *built.layers]:
            store.blobs.delete(descriptor.digest)
        store.records.remove(reference)
        yield reference


async def test_a_token_server_down_for_a_moment_is_waited_out(store, token_registry, token_tcp, behind_token_proxy):
    token_tcp.down_for(1.5)
    progress = Retries()
    result, _ = await timed_pull(behind_token_proxy, store, token_registry, progress)
    assert not isinstance(result, Exception), result
    assert any("(connection refused); retrying" in m for m in progress.messages), progress.messages


async def test_a_token_server_down_for_good_is_named_in_the_error(store, token_registry, token_tcp,
                                                                   behind_token_proxy):
    token_tcp.down_for(60)
    error, took = await timed_pull(behind_token_proxy, store, token_registry)
    assert isinstance(error, RegistryUnreachable), error
    registry = behind_token_proxy.split("/")[0]
    assert str(error).startswith(f"cannot reach {token_tcp.address}, the token server of registry {registry}: "
                                 f"connection refused; retried for {BUDGET} s (registry_retry_seconds)"), error
    assert took < BOUND
