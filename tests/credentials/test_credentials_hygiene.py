"""Secret hygiene, end to end: pulls through every source with a distinctive password, then a search of the
database, FORKLIFT_HOME, captured logs, process arguments and all CLI output for it — zero hits."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess

import pytest

from forklift.credentials import Credentials
from forklift.credentials.chain import default_keychain
from forklift.credentials.dockerconfig import DockerConfigKeychain, login
from forklift.credentials.functions import FunctionRegistry
from forklift.credentials.secrets import SecretStore
from forklift.images.pull import pull_sync
from forklift.registry import AuthenticationFailed


@pytest.fixture
def recorded_argv(monkeypatch):
    """Every argv this process starts a program with (helpers, provider functions, the CLI)."""
    seen: list[str] = []
    real = subprocess.Popen

    class Recording(real):
        def __init__(self, args, *rest, **kwargs):
            seen.append(args if isinstance(args, str) else " ".join(map(str, args)))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return seen


def test_password_never_leaks(home, settings, store, pushed, private_registry, cli, caplog, make_handler,
                              helper_bin, docker_config, tmp_path, recorded_argv):
    password = private_registry.password  # distinctive: fl-hygiene-<random>
    user = private_registry.username
    wrong = f"fl-wrong-{secrets.token_hex(8)}"
    caplog.set_level(logging.DEBUG)  # every logger: the forklift tree, httpx, httpcore
    messages: list[str] = []

    # 1. a provider function (its source embeds the password and prints it to its log), behind a role
    handler = make_handler("provider.py", f"""
        print("provider debug: handing out", {password!r}, file=sys.stderr)
        return {{"Credentials": {{"Username": {user!r}, "Password": {password!r}}}}}
    """)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                 "Resource": "arn:aws:lambda:*:*:function:*registry-creds*"}]}))
    arn = cli("-vv", "functions", "register", "registry-creds", "--handler", str(handler)).stdout.strip()
    role = cli("-vv", "roles", "put", "Exec", "--policy", str(policy)).stdout.strip()
    cli("-vv", "functions", "list")
    cli("-vv", "functions", "show", arn)
    invoked = cli("-vv", "functions", "invoke", arn, "--image", pushed.private, "--log")
    assert '"Password": "********"' in invoked.stdout and f'"Username": "{user}"' in invoked.stdout
    assert "provider debug: handing out ********" in invoked.stderr
    keychain = default_keychain(settings, function_arn=arn, role_arn=role, image=pushed.private)
    assert pull_sync(pushed.private, store, keychain=keychain).image.digest == pushed.digest

    # 2. Gradient-style job credentials, encrypted, shared with a clone, then released
    job_secrets = SecretStore(settings)
    secret_id = job_secrets.put(Credentials(user, password), "experiment:e1", registry=private_registry.address)
    job_secrets.add_owner(secret_id, "experiment:e1-clone")
    keychain = default_keychain(settings, explicit=job_secrets.keychain(secret_id))
    assert pull_sync(pushed.private, store, keychain=keychain).image.digest == pushed.digest
    job_secrets.release_owner("experiment:e1")

    # 3. docker login through a credential helper, then a pull that reads it back
    docker_config.write_text(json.dumps({"credsStore": "flfake"}))
    login(private_registry.address, user, password)
    assert pull_sync(pushed.private, store, keychain=DockerConfigKeychain()).image.digest == pushed.digest
    docker_config.write_text("{}")

    # 4. the CLI: docker-compatible login/logout and pulls with every flag, at debug verbosity
    cli("-vv", "login", private_registry.address, "-u", user, "--password-stdin", stdin=password + "\n")
    assert password not in docker_config.read_text()  # docker's format: base64 only
    cli("-vv", "images", "pull", pushed.private)
    cli("-vv", "logout", private_registry.address)
    cli("-vv", "images", "pull", pushed.private, "-u", user, "--password-stdin", stdin=password + "\n")
    failed = cli("-vv", "images", "pull", pushed.private, "-u", user, "--password-stdin", stdin=wrong + "\n",
                 check=False)
    assert failed.returncode == 1 and "authentication" in failed.stderr

    # 5. wrong credentials from a provider fail without showing them
    bad = FunctionRegistry(settings).register("registry-creds-bad", handler=make_handler("bad.py", f"""
        return {{"Credentials": {{"Username": {user!r}, "Password": {wrong!r}}}}}
    """)).arn
    with pytest.raises(AuthenticationFailed) as info:
        pull_sync(pushed.private, store, keychain=default_keychain(settings, function_arn=bad, role_arn=role))
    messages.append(str(info.value))

    # --- search everything ---------------------------------------------------------------------
    scanned = []
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            scanned.append(path.name)
            assert password.encode() not in data, f"password in {path}"
            assert wrong.encode() not in data, f"wrong password in {path}"
    assert "forklift.db" in scanned and "secret.key" in scanned
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert len(caplog.records) > 10  # the check below is not vacuous
    outputs = "\n".join(cli.transcripts)
    assert "DEBUG" in outputs
    for where, text in {"logs": logs, "CLI output": outputs, "exception messages": "\n".join(messages),
                        "process arguments": "\n".join(recorded_argv)}.items():
        assert password not in text, f"password in {where}"
        assert wrong not in text, f"wrong password in {where}"
    assert any("docker-credential-flfake" in argv for argv in recorded_argv)
    assert any("runner.py" in argv for argv in recorded_argv)
