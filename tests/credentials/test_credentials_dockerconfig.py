"""docker's config.json: auths, credsStore, credHelpers, the helper protocol, login and logout."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from forklift.credentials import ANONYMOUS, Credentials
from forklift.credentials.dockerconfig import DockerConfigKeychain, login, logout
from forklift.credentials.errors import CredentialsError, HelperFailed
from forklift.credentials.helpers import helper_get, helper_list
from forklift.images.pull import pull_sync


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write(path, document: dict) -> None:
    path.write_text(json.dumps(document))


def test_auths_entries_and_key_normalization(docker_config):
    write(docker_config, {"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
        "HTTPS://Registry.Example.com:5000/v2/": {"auth": b64("ex:pa:ss")},  # a password may hold ':'
        "ghcr.io": {"identitytoken": "refresh-me"},
        "quay.io": {"registrytoken": "ready-bearer"},
        "old.example": {"username": "legacy", "password": "fields"},
        "broken.example": {"auth": "%%%not-base64"},
    }})
    keychain = DockerConfigKeychain()
    assert keychain.resolve("docker.io", "library/ubuntu") == Credentials("hubuser", "hubpass")
    assert keychain.resolve("registry.example.com:5000", "a/b") == Credentials("ex", "pa:ss")
    assert keychain.resolve("ghcr.io", "o/r") == Credentials(identity_token="refresh-me")
    assert keychain.resolve("quay.io", "o/r") == Credentials(registry_token="ready-bearer")
    assert keychain.resolve("old.example", "x") == Credentials("legacy", "fields")
    assert keychain.resolve("broken.example", "x") == ANONYMOUS
    assert keychain.resolve("elsewhere.example", "x") == ANONYMOUS


@pytest.mark.parametrize("key", ["index.docker.io", "registry-1.docker.io", "docker.io", "https://index.docker.io/v1/"])
def test_every_docker_hub_spelling_means_docker_io(docker_config, key):
    write(docker_config, {"auths": {key: {"auth": b64("u:p")}}})
    assert DockerConfigKeychain().resolve("docker.io", "library/busybox") == Credentials("u", "p")


def test_missing_config_is_anonymous_and_broken_config_is_a_clear_error(docker_config):
    assert DockerConfigKeychain().resolve("docker.io", "x") == ANONYMOUS
    docker_config.write_text("{not json")
    with pytest.raises(CredentialsError, match="is not valid JSON"):
        DockerConfigKeychain().resolve("docker.io", "x")


def test_helper_protocol(helper_bin, tmp_path):
    (tmp_path / "helper-store.json").write_text(json.dumps({
        "r.example": {"Username": "hu", "Secret": "hs"},
        "t.example": {"Username": "<token>", "Secret": "identity"},
    }))
    assert helper_get("flfake", "r.example") == Credentials("hu", "hs")
    assert helper_get("flfake", "t.example") == Credentials(identity_token="identity")
    assert helper_get("flfake", "none.example") is None
    assert helper_list("flfake") == {"r.example": "hu", "t.example": "<token>"}
    argv = (tmp_path / "helper-argv.log").read_text()
    assert "hs" not in argv and "identity" not in argv  # secrets travel on stdin/stdout only


def test_cred_helpers_beat_creds_store_beats_auths(docker_config, helper_bin, tmp_path):
    (tmp_path / "helper-store.json").write_text(json.dumps({
        "per.example": {"Username": "from-helper", "Secret": "s1"},
        "https://index.docker.io/v1/": {"Username": "hub-from-store", "Secret": "s2"},
    }))
    write(docker_config, {
        "credsStore": "no-such-store",  # not installed: a warning, then auths
        "credHelpers": {"per.example": "flfake", "https://index.docker.io/v1/": "flfake"},
        "auths": {"per.example": {"auth": b64("from-auths:x")}, "fallback.example": {"auth": b64("fa:fp")}},
    })
    keychain = DockerConfigKeychain()
    assert keychain.resolve("per.example", "x") == Credentials("from-helper", "s1")
    assert keychain.resolve("docker.io", "x") == Credentials("hub-from-store", "s2")  # asked with Hub's URL key
    assert keychain.resolve("fallback.example", "x") == Credentials("fa", "fp")

    write(docker_config, {"credsStore": "flfake", "auths": {"per.example": {"auth": b64("from-auths:x")},
                                                             "only.example": {"auth": b64("o:p")}}})
    keychain = DockerConfigKeychain()
    assert keychain.resolve("per.example", "x") == Credentials("from-helper", "s1")
    assert keychain.resolve("only.example", "x") == Credentials("o", "p")  # the store has none: auths


def test_login_and_logout_write_docker_compatible_config(docker_config):
    write(docker_config, {"auths": {"HTTPS://R.Example:5000": {"auth": b64("old:old")}}, "psFormat": "table"})
    assert login("r.example:5000", "alice", "s3cret") == str(docker_config)
    document = json.loads(docker_config.read_text())
    assert document["psFormat"] == "table"  # unknown keys survive
    assert document["auths"] == {"r.example:5000": {"auth": b64("alice:s3cret")}}
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o600
    login("index.docker.io", "hub", "hubpw")
    assert "https://index.docker.io/v1/" in json.loads(docker_config.read_text())["auths"]
    assert DockerConfigKeychain().resolve("docker.io", "x") == Credentials("hub", "hubpw")

    assert logout("r.example:5000") is True
    assert logout("r.example:5000") is False
    assert "r.example:5000" not in json.loads(docker_config.read_text())["auths"]


def test_login_uses_the_configured_creds_store(docker_config, helper_bin, tmp_path):
    write(docker_config, {"credsStore": "flfake"})
    assert login("r.example", "alice", "in-the-store") == "docker-credential-flfake"
    assert "in-the-store" not in docker_config.read_text()
    stored = json.loads((tmp_path / "helper-store.json").read_text())
    assert stored == {"r.example": {"Username": "alice", "Secret": "in-the-store"}}
    assert DockerConfigKeychain().resolve("r.example", "x") == Credentials("alice", "in-the-store")
    assert logout("r.example") is True
    assert json.loads((tmp_path / "helper-store.json").read_text()) == {}
    assert "in-the-store" not in (tmp_path / "helper-argv.log").read_text()


def test_auths_entry_pulls_a_private_image(docker_config, store, pushed, basic_registry):
    login(basic_registry.address, basic_registry.username, basic_registry.password)
    result = pull_sync(pushed.basic, store, keychain=DockerConfigKeychain())
    assert result.image.digest == pushed.digest


def test_helper_on_path_pulls_a_private_image(docker_config, store, pushed, private_registry, helper_bin, tmp_path):
    (tmp_path / "helper-store.json").write_text(json.dumps(
        {private_registry.address: {"Username": private_registry.username, "Secret": private_registry.password}}))
    write(docker_config, {"credHelpers": {private_registry.address: "flfake"}})
    result = pull_sync(pushed.private, store, keychain=DockerConfigKeychain())
    assert result.image.digest == pushed.digest
    gets = [line for line in (tmp_path / "helper-argv.log").read_text().splitlines() if '"get"' in line]
    assert len(gets) == 1  # one helper run per registry for the whole pull


def test_images_cli_uses_docker_login(cli, home, pushed, private_registry, docker_config):
    cli("login", private_registry.address, "-u", private_registry.username, "--password-stdin",
        stdin=private_registry.password + "\n")
    pulled = cli("images", "pull", pushed.private)
    assert f"Digest: {pushed.digest}" in pulled.stdout
    out = cli("logout", private_registry.address)
    assert "Removed credentials" in out.stdout
    refused = cli("images", "pull", pushed.private.replace(":1", ":missing"), check=False)
    assert refused.returncode == 1 and "no credentials were given" in refused.stderr


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_login_checks_the_credentials_before_saving_them(request, cli, home, docker_config, which):
    registry = request.getfixturevalue(which)
    refused = cli("login", registry.address, "-u", registry.username, "--password-stdin",
                  stdin="not-the-password-4410\n", check=False)
    assert refused.returncode == 1
    assert f"authentication to {registry.address} failed for user {registry.username}" in refused.stderr
    assert "not-the-password-4410" not in refused.stdout + refused.stderr
    assert not docker_config.exists() or registry.address not in docker_config.read_text()

    saved = cli("login", registry.address, "-u", registry.username, "--password-stdin", stdin=registry.password + "\n")
    assert "saved" in saved.stdout
    assert registry.address in docker_config.read_text()


def test_a_failing_helpers_output_goes_to_the_server_log(forklift_home, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-leaky"
    helper.write_text("#!/bin/sh\necho 'keyring locked: session token hunter2-SECRET' >&2\nexit 3\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    with pytest.raises(HelperFailed) as failed:
        helper_get("leaky", "r.example")
    message = str(failed.value)
    assert "docker-credential-leaky get failed (exit status 3" in message and "hunter2-SECRET" not in message
    log = forklift_home / "logs" / "credential-helpers.log"
    assert str(log) in message
    assert "keyring locked: session token hunter2-SECRET" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
