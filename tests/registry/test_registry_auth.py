"""The authentication flow: identity tokens, ready-made bearer tokens, expiry, insufficient scope."""

from __future__ import annotations

import ssl
import time

import httpx
import pytest

from fixtures.imagetools import keychain
from forklift.credentials import Credentials, StaticKeychain
from forklift.images.pull import pull
from forklift.images.push import push, source_from_store
from forklift.registry import RegistryClient, RegistryServerError
from forklift.registry.auth import TOKEN_REQUEST, RegistryAuth
from forklift.registry.tokens import TokenCache

pytestmark = pytest.mark.anyio


async def pushed(store, image, registry, repo: str) -> str:
    target = f"{registry.address}/{repo}"
    await push(source_from_store(store, image.reference), target, store, keychain=keychain(registry))
    return target


async def test_identity_token_is_used_as_oauth2_refresh_token(store, busybox_image, token_registry, token_server):
    target = await pushed(store, busybox_image, token_registry, "private/refresh:1")
    trust = ssl.create_default_context(cafile=str(token_registry.ca_cert))
    offline = httpx.post(token_server.realm, verify=trust, data={
        "grant_type": "password", "username": token_registry.username, "password": token_registry.password,
        "service": token_server.service, "scope": "repository:private/refresh:pull", "client_id": "test",
        "access_type": "offline"}).json()
    token_server.reset()
    result = await pull(target, store, keychain=StaticKeychain(Credentials(identity_token=offline["refresh_token"])))
    assert result.image.digest == busybox_image.digest
    assert [(r.method, r.grant_type) for r in token_server.fetches()] == [("POST", "refresh_token")]


async def test_registry_token_is_sent_as_is(store, busybox_image, token_registry, token_server):
    target = await pushed(store, busybox_image, token_registry, "private/ready:1")
    bearer = token_server.issue(token_registry.username, ["repository:private/ready:pull"])
    token_server.reset()
    result = await pull(target, store, keychain=StaticKeychain(Credentials(registry_token=bearer)))
    assert result.image.digest == busybox_image.digest
    assert token_server.requests == []


async def test_expired_tokens_are_renewed(store, busybox_image, token_registry, token_server):
    await pushed(store, busybox_image, token_registry, "private/expiry:1")
    token_server.reset()
    token_server.expires_in = 60
    skew = [0.0]
    cache = TokenCache(clock=lambda: time.time() + skew[0])
    async with RegistryClient(token_registry.address, keychain=keychain(token_registry), token_cache=cache) as client:
        await client.head_manifest("private/expiry", "1")
        await client.head_manifest("private/expiry", "1")
        assert len(token_server.fetches()) == 1
        skew[0] = 61  # the cache's clock moves past issued_at + expires_in
        await client.head_manifest("private/expiry", "1")
    assert len(token_server.fetches()) == 2


def drive(flow, responses):
    """Run an auth flow generator against scripted responses.

    Returns (is_token_request, Authorization header, body) for each request as it was sent: the flow
    resends the same request object, so its headers are read at the moment it goes out.
    """
    request = next(flow)
    sent = []
    for response in [*responses, None]:
        sent.append((bool(request.extensions.get(TOKEN_REQUEST)), request.headers.get("Authorization"),
                     request.read()))
        if response is None:
            break
        response.request = request
        try:
            request = flow.send(response)
        except StopIteration:
            break
    return sent


def test_insufficient_scope_fetches_a_token_for_the_scope_the_registry_names():
    """Drives the flow generator directly: the registry side of this exchange is scripted here."""
    auth = RegistryAuth("reg.example", lambda repo: Credentials("u", "p"))
    challenge = 'Bearer realm="https://auth.example/token",service="reg"'
    request = httpx.Request("POST", "https://reg.example/v2/team/app/blobs/uploads/")
    token = {"token": "t1", "expires_in": 300}
    sent = drive(auth.auth_flow(request), [
        httpx.Response(401, headers={"WWW-Authenticate": challenge + ',scope="repository:team/app:pull"'}),
        httpx.Response(200, json=token),
        httpx.Response(401, headers={"WWW-Authenticate": challenge
                                     + ',scope="repository:team/app:pull,push",error="insufficient_scope"'}),
    ])
    assert [is_token for is_token, _, _ in sent] == [False, True, False]
    assert b"scope=repository%3Ateam%2Fapp%3Apull%2Cpush" in sent[1][2]
    assert sent[2][1] == "Bearer t1"

    again = httpx.Request("POST", "https://reg.example/v2/team/app/blobs/uploads/")
    retry = drive(auth.auth_flow(again), [
        httpx.Response(401, headers={"WWW-Authenticate": challenge
                                     + ',scope="repository:team/app:pull,push",error="insufficient_scope"'}),
        httpx.Response(200, json={"token": "t2", "expires_in": 300}),
    ])
    assert retry[0][1] == "Bearer t1"  # the cached token goes up front
    assert retry[1][0]  # rejected for insufficient scope: a fresh token is fetched
    assert retry[2][1] == "Bearer t2"


async def test_a_token_server_answering_503_is_waited_out(store, busybox_image, token_registry, token_server):
    await pushed(store, busybox_image, token_registry, "private/busy-token:1")
    token_server.reset()
    token_server.fail(503, times=2, retry_after="0")
    async with RegistryClient(token_registry.address, keychain=keychain(token_registry)) as client:
        manifest = await client.get_manifest("private/busy-token", "1")
    assert manifest.layers
    statuses = [r.status for r in token_server.requests]
    assert statuses[:2] == [503, 503] and 200 in statuses[2:], statuses


async def test_a_token_server_that_stays_down_fails_within_the_budget(store, busybox_image, token_registry,
                                                                      token_server, forklift_home):
    await pushed(store, busybox_image, token_registry, "private/down-token:1")
    token_server.reset()
    token_server.fail(429, times=1000)
    (forklift_home / "config.toml").write_text("registry_retry_seconds = 1\n")
    async with RegistryClient(token_registry.address, keychain=keychain(token_registry)) as client:
        with pytest.raises(RegistryServerError, match=r"token server for .* answered 429; retried"):
            await client.get_manifest("private/down-token", "1")
    assert len(token_server.requests) >= 2, token_server.requests
