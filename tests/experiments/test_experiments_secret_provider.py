"""The reserved provider `forklift-secret-<id>`: stored credentials addressed like a provider function
(the credentials-layer change experiments rely on)."""

from __future__ import annotations

import pytest

from forklift.config import load_settings
from forklift.credentials import Credentials
from forklift.credentials.chain import check_provider, default_keychain
from forklift.credentials.errors import CredentialsError, FunctionNotFound
from forklift.credentials.functions import FunctionRegistry, secret_id_of
from forklift.credentials.roles import RoleStore
from forklift.credentials.secrets import SecretStore


@pytest.fixture
def settings(tmp_path, monkeypatch, database_env):
    """A home whose stores are on SQLite, then on PostgreSQL (`database_env`)."""
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "home"))
    return load_settings()


def test_experiments_secret_arn_resolves_to_stored_credentials(settings):
    secrets = SecretStore(settings)
    secret_id = secrets.put(Credentials("dora", "line1\nline2"), "experiment:a", registry="registry.example:5000")
    functions = FunctionRegistry(settings, secrets=secrets)
    arn = functions.secret_arn(secret_id)
    assert arn == f"arn:aws:lambda:us-east-1:000000000000:function:forklift-secret-{secret_id}"
    assert secret_id_of(arn) == secret_id and secret_id_of("my-provider") is None
    assert functions.get(arn).arn == arn and functions.get(arn).runtime == "secret"
    found = functions.credentials(arn, "registry.example:5000", "team/img")
    assert (found.username, found.password) == ("dora", "line1\nline2")
    assert functions.credentials(arn, "other.example", "team/img").is_anonymous  # scoped to its registry
    # The training runner's path: default_keychain with the job's provider ARN.
    keychain = default_keychain(settings, function_arn=arn, image="registry.example:5000/team/img:1",
                                docker_config=False, ecr=False)
    assert keychain.resolve("registry.example:5000", "team/img").password == "line1\nline2"
    assert "line1" not in repr(found)


def test_experiments_secret_arn_is_never_invoked_registered_or_role_checked(settings, tmp_path):
    secrets = SecretStore(settings)
    secret_id = secrets.put(Credentials("dora", "pw-123"), "experiment:a")
    functions = FunctionRegistry(settings, secrets=secrets)
    arn = functions.secret_arn(secret_id)
    with pytest.raises(CredentialsError, match="cannot be invoked"):
        functions.invoke(arn, {})
    handler = tmp_path / "p.py"
    handler.write_text("def handler(event, context):\n    return {}\n")
    with pytest.raises(CredentialsError, match="reserved"):
        functions.register(f"forklift-secret-{secret_id}", handler=handler)
    # With roles defined, a role that may invoke nothing still uses stored credentials: no code runs.
    RoleStore(settings).put("locked", {"Statement": [{"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}]})
    assert check_provider(settings, arn, "arn:aws:iam::000000000000:role/locked") == arn


def test_experiments_secret_arn_ends_with_its_last_owner(settings):
    secrets = SecretStore(settings)
    secret_id = secrets.put(Credentials("dora", "pw-123"), "experiment:a")
    secrets.add_owner(secret_id, "experiment:a-clone")
    functions = FunctionRegistry(settings, secrets=secrets)
    arn = functions.secret_arn(secret_id)
    assert not secrets.release(secret_id, "experiment:a")
    assert functions.credentials(arn, "r", "x").password == "pw-123"
    assert secrets.release(secret_id, "experiment:a-clone")
    with pytest.raises(FunctionNotFound, match="no longer exist"):
        check_provider(settings, arn, None)
    with pytest.raises(FunctionNotFound):
        functions.credentials(arn, "r", "x")
