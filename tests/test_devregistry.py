"""The test infrastructure itself, exercised with plain httpx: registries, token server, fault proxy."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import stat
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography import x509

from forklift.devregistry import LocalRegistry, create_pki, write_htpasswd

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def client_for(ca_cert: Path, **kwargs) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(ca_cert)), timeout=10, **kwargs)


def push_blob(client: httpx.Client, base: str, repo: str, data: bytes) -> str:
    """Monolithic upload: POST, then PUT to the Location with the digest *merged* into its query."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = client.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = httpx.URL(base).join(started.headers["location"])
    done = client.put(location.copy_merge_params({"digest": digest}), content=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def push_image(client: httpx.Client, base: str, repo: str, tag: str, layer: bytes) -> str:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    manifest = json.dumps({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(client, base, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": push_blob(client, base, repo, layer), "size": len(layer)}],
    }).encode()
    r = client.put(f"{base}/v2/{repo}/manifests/{tag}", content=manifest,
                   headers={"Content-Type": MANIFEST_TYPE})
    assert r.status_code == 201, r.text
    return r.headers["docker-content-digest"]


def fetch_token(client: httpx.Client, token_server, *scopes: str, auth=None) -> str:
    r = client.get(token_server.realm, params=[("service", token_server.service)] +
                   [("scope", s) for s in scopes], auth=auth)
    assert r.status_code == 200, r.text
    return r.json()["token"]


# --- devregistry building blocks ----------------------------------------------------------------


def test_pki_is_reused_and_keys_are_private(tmp_path: Path) -> None:
    first = create_pki(tmp_path / "pki")
    before = {p: p.read_bytes() for p in (first.ca_cert, first.server_cert)}
    second = create_pki(tmp_path / "pki")
    assert {p: p.read_bytes() for p in (second.ca_cert, second.server_cert)} == before
    for key in (second.ca_key, second.server_key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(first.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).critical
    server = x509.load_pem_x509_certificate(first.server_cert.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_htpasswd_is_bcrypt_and_private(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    write_htpasswd(path, {"bob": "hunter2"}, rounds=4)
    assert path.read_text().startswith("bob:$2b$04$")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_missing_registry_binary_is_explained(tmp_path: Path, pki) -> None:
    with pytest.raises(RuntimeError, match="install Debian's docker-registry package"):
        LocalRegistry(tmp_path, pki, binary="no-such-docker-registry").start()


def test_forklift_home_trusts_every_test_server(forklift_home: Path, basic_registry, token_registry,
                                                fault_proxy, storage_server, token_server) -> None:
    assert os.environ["FORKLIFT_HOME"] == str(forklift_home)
    for address in (basic_registry.address, token_registry.address, fault_proxy.address,
                    storage_server.address, token_server.address):
        assert (forklift_home / "certs.d" / address / "ca.crt").is_file()


def test_busybox_rootfs(busybox_rootfs: Path) -> None:
    assert os.readlink(busybox_rootfs / "bin" / "sh") == "busybox"
    assert (busybox_rootfs / "etc" / "motd").read_text() == "hello\n"
    assert os.access(busybox_rootfs / "bin" / "busybox", os.X_OK)


# --- registries ---------------------------------------------------------------------------------


def test_basic_registry_challenges_then_accepts_alice(basic_registry) -> None:
    with client_for(basic_registry.ca_cert) as client:
        anonymous = client.get(f"{basic_registry.url}/v2/")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Basic realm=")
        assert client.get(f"{basic_registry.url}/v2/", auth=("alice", "wrong")).status_code == 401
        assert client.get(f"{basic_registry.url}/v2/", auth=basic_registry.auth).status_code == 200


def test_token_registry_bearer_flow(token_registry, token_server) -> None:
    with client_for(token_registry.ca_cert) as client:
        challenge = client.get(f"{token_registry.url}/v2/")
        assert challenge.status_code == 401
        www = challenge.headers["www-authenticate"]
        assert www.startswith(f'Bearer realm="{token_server.realm}"')
        assert f'service="{token_server.service}"' in www
        token = fetch_token(client, token_server, "repository:demo/tiny:pull,push", auth=token_registry.auth)
        ok = client.get(f"{token_registry.url}/v2/", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    [req] = token_server.requests
    assert (req.method, req.grant_type, req.username, req.basic) == ("GET", "get", "alice", True)
    assert req.scopes == ("repository:demo/tiny:pull,push",)


def test_anonymous_token_pulls_public_repositories_only(token_registry, token_server) -> None:
    base = token_registry.url
    with client_for(token_registry.ca_cert) as client:
        token = fetch_token(client, token_server, "repository:public/x:pull,push", auth=token_registry.auth)
        client.headers["Authorization"] = f"Bearer {token}"
        push_image(client, base, "public/x", "1.0", b"public layer")
        del client.headers["Authorization"]

        anon = fetch_token(client, token_server, "repository:public/x:pull")
        tags = client.get(f"{base}/v2/public/x/tags/list", headers={"Authorization": f"Bearer {anon}"})
        assert tags.status_code == 200 and "1.0" in tags.json()["tags"]

        # Not public: the token server still answers 200, with nothing granted; the registry refuses.
        denied = fetch_token(client, token_server, "repository:private/x:pull")
        assert jwt.decode(denied, options={"verify_signature": False})["access"] == []
        r = client.get(f"{base}/v2/private/x/tags/list", headers={"Authorization": f"Bearer {denied}"})
        assert r.status_code == 401
    assert [r.basic for r in token_server.fetches()] == [True, False, False]


def test_token_post_grants_refresh_and_405_switch(token_registry, token_server) -> None:
    form = {"grant_type": "password", "username": "alice", "password": token_registry.password,
            "service": token_server.service, "client_id": "forklift-tests", "access_type": "offline",
            "scope": "repository:demo/a:pull repository:demo/b:pull,push"}
    with client_for(token_registry.ca_cert) as client:
        issued = client.post(token_server.realm, data=form).json()
        assert set(issued) >= {"token", "access_token", "expires_in", "issued_at", "refresh_token"}
        claims = jwt.decode(issued["token"], options={"verify_signature": False})
        assert claims["aud"] == token_server.service and len(claims["access"]) == 2

        refreshed = client.post(token_server.realm, data={
            "grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
            "service": token_server.service, "client_id": "forklift-tests", "scope": "repository:demo/a:pull"})
        assert refreshed.status_code == 200 and "refresh_token" not in refreshed.json()
        ok = client.get(f"{token_registry.url}/v2/", headers={"Authorization": f"Bearer {refreshed.json()['token']}"})
        assert ok.status_code == 200

        assert client.post(token_server.realm, data={**form, "password": "nope"}).status_code == 401
        assert client.get(token_server.realm, params={"service": token_server.service},
                          auth=("alice", "nope")).status_code == 401
        token_server.post_supported = False
        assert client.post(token_server.realm, data=form).status_code == 405
    grants = [(r.method, r.grant_type, r.status) for r in token_server.requests]
    assert grants == [("POST", "password", 200), ("POST", "refresh_token", 200), ("POST", "password", 401),
                      ("GET", "get", 401), ("POST", "password", 405)]


# --- fault proxy and storage --------------------------------------------------------------------


@pytest.fixture
def proxied_blob(fault_proxy, basic_registry) -> tuple[str, bytes]:
    """A 64 KiB blob pushed through the proxy (which proves Location rewriting on uploads)."""
    data = os.urandom(64 * 1024)
    with client_for(basic_registry.ca_cert, auth=basic_registry.auth) as client:
        digest = push_blob(client, fault_proxy.url, "faults/blob", data)
    fault_proxy.reset()
    return digest, data


def test_fault_proxy_throttles_then_passes_challenges_through(fault_proxy, basic_registry) -> None:
    fault_proxy.throttle(2, retry_after=3)
    with client_for(basic_registry.ca_cert) as client:
        for _ in range(2):
            r = client.get(f"{fault_proxy.url}/v2/")
            assert r.status_code == 429 and r.headers["retry-after"] == "3"
            assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        r = client.get(f"{fault_proxy.url}/v2/")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic realm=")
        assert client.get(f"{fault_proxy.url}/v2/", auth=basic_registry.auth).status_code == 200
    assert [s for _, _, s in fault_proxy.requests] == [429, 429, 401, 200]


def test_fault_proxy_drops_fails_and_tampers_blobs(fault_proxy, basic_registry, proxied_blob) -> None:
    digest, data = proxied_blob
    url = f"{fault_proxy.url}/v2/faults/blob/blobs/{digest}"
    with client_for(basic_registry.ca_cert, auth=basic_registry.auth) as client:
        fault_proxy.drop_blob_after(digest, 1000)
        assert client.get(url, auth=None).status_code == 401  # a challenge does not use the fault up
        received = b""
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream("GET", url) as r:
                assert r.headers["content-length"] == str(len(data))
                for chunk in r.iter_raw():
                    received += chunk
        assert received == data[:1000]
        assert client.get(url).content == data  # the fault was consumed

        fault_proxy.fail(503, 1, path_contains="/blobs/")
        assert client.get(url).status_code == 503
        assert client.get(url).status_code == 200

        fault_proxy.tamper_blob(digest)
        tampered = client.get(url).content
        assert len(tampered) == len(data)
        assert sum(a != b for a, b in zip(tampered, data, strict=True)) == 1
    assert fault_proxy.blob_gets[digest] == 6  # 401, drop, retry, 503, 200, tampered


def test_fault_proxy_redirects_blobs_to_another_origin(fault_proxy, storage_server, basic_registry,
                                                       proxied_blob) -> None:
    digest, data = proxied_blob
    fault_proxy.redirect_blobs_to(storage_server)
    url = f"{fault_proxy.url}/v2/faults/blob/blobs/{digest}"
    with client_for(basic_registry.ca_cert, auth=basic_registry.auth) as client:
        first = client.get(url)
        assert first.status_code == 307
        location = first.headers["location"]
        assert location.startswith(f"https://127.0.0.1:{storage_server.port}/")

        # httpx drops Authorization on the cross-origin hop, as a registry client must.
        followed = client.get(url, follow_redirects=True)
        assert followed.content == data and followed.url.host == "127.0.0.1"
        assert "authorization" not in storage_server.requests[-1]

        ranged = client.get(location, headers={"Range": "bytes=10-"}, auth=None)
        assert ranged.status_code == 206 and ranged.content == data[10:]
        # Like S3: credentials meant for the registry are refused at the storage.
        assert client.get(location, headers={"Authorization": "Bearer leaked"}, auth=None).status_code == 400
        storage_server.expire_urls()
        assert client.get(location, auth=None).status_code == 403


@pytest.mark.anyio
async def test_async_client_sees_dropped_blob(fault_proxy, basic_registry, proxied_blob) -> None:
    digest, data = proxied_blob
    fault_proxy.drop_blob_after(digest, 10)
    verify = ssl.create_default_context(cafile=str(basic_registry.ca_cert))
    async with httpx.AsyncClient(verify=verify, auth=basic_registry.auth) as client:
        url = f"{fault_proxy.url}/v2/faults/blob/blobs/{digest}"
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)
        resumed = await client.get(url, headers={"Range": "bytes=10-"})
        assert resumed.status_code == 206 and resumed.content == data[10:]
