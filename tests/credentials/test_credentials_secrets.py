"""Secrets at rest: the key file, encrypted rows, shared owners (Gradient clones) and deletion."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from forklift.credentials import ANONYMOUS, Credentials
from forklift.credentials.chain import default_keychain
from forklift.credentials.errors import SecretNotFound, SecretUnreadable
from forklift.credentials.secrets import KEY_FILE, SecretStore, load_key
from forklift.images.pull import pull_sync


def test_key_file_is_created_once_0600_even_when_raced(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    keys, errors = [], []

    def create():
        try:
            load_key(home)
            keys.append((home / KEY_FILE).read_bytes())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(keys)) == 1
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600
    assert sorted(p.name for p in home.iterdir()) == [KEY_FILE]  # no temporary files left behind


def test_database_holds_only_ciphertext(settings, home, secrets_registry):
    secrets = SecretStore(settings)
    password = "clear-text-would-be-here-5e2b"
    secrets_registry.register("a password put in the secret store", password)
    secret_id = secrets.put(Credentials("alice", password), "job:train-1", registry="r.example")
    assert secrets.get(secret_id) == Credentials("alice", password)
    assert secrets.registry_of(secret_id) == "r.example"
    for name in ("forklift.db", "forklift.db-wal"):
        path = home / name
        if path.exists():
            assert password.encode() not in path.read_bytes()


def test_clones_share_one_secret_until_the_last_owner_releases_it(settings):
    secrets = SecretStore(settings)
    secret_id = secrets.put(Credentials("alice", "pw"), "experiment:e1")
    secrets.add_owner(secret_id, "experiment:e1-clone")  # the clone keeps a reference
    assert secrets.owners(secret_id) == ["experiment:e1", "experiment:e1-clone"]
    assert secrets.release(secret_id, "experiment:e1") is False
    assert secrets.get(secret_id) == Credentials("alice", "pw")  # still there for the clone
    assert secrets.release_owner("experiment:e1-clone") == 1
    assert not secrets.exists(secret_id)
    with pytest.raises(SecretNotFound, match=secret_id):
        secrets.get(secret_id)
    with pytest.raises(SecretNotFound):
        secrets.add_owner(secret_id, "experiment:late-clone")


def test_the_last_two_owners_released_at_once_still_delete_the_secret_on_postgresql(tmp_path, monkeypatch,
                                                                                    postgres_url):
    """One release counts the owners while the other's delete is not yet committed: the secret's row lock
    makes the second wait for the first and then see no owner left."""
    from sqlalchemy import delete

    from forklift.config import Settings
    from forklift.credentials.models import SecretOwnerRow, SecretRow, sessions_for

    monkeypatch.setenv("FORKLIFT_DATABASE_URL", postgres_url)
    settings = Settings(home=tmp_path)
    secrets = SecretStore(settings)
    secret_id = secrets.put(Credentials("alice", "pw"), "experiment:a")
    secrets.add_owner(secret_id, "experiment:b")
    with sessions_for(settings).begin() as session:  # release("experiment:a") as it stands mid-way
        session.execute(delete(SecretOwnerRow).where(SecretOwnerRow.owner == "experiment:a"))
        assert session.get(SecretRow, secret_id, with_for_update=True) is not None
        other = threading.Thread(target=secrets.release_owner, args=("experiment:b",))
        other.start()
        other.join(1)  # it waits for this transaction's lock (without one, it would finish now, seeing "a")
    other.join(30)
    assert not other.is_alive() and not secrets.exists(secret_id)


def test_a_replaced_key_is_a_clear_error(settings, home):
    secrets = SecretStore(settings)
    secret_id = secrets.put(Credentials("alice", "pw"), "job:j")
    os.unlink(home / KEY_FILE)
    with pytest.raises(SecretUnreadable, match="cannot be decrypted"):
        SecretStore(settings).get(secret_id)


def test_explicit_job_credentials_pull_a_private_image(settings, store, pushed, private_registry):
    secrets = SecretStore(settings)
    secret_id = secrets.put(Credentials(private_registry.username, private_registry.password), "job:pull-1",
                            registry=private_registry.address)
    keychain = default_keychain(settings, explicit=secrets.keychain(secret_id))
    assert keychain.resolve("other.example", "x") == ANONYMOUS  # scoped to its registry
    result = pull_sync(pushed.private, store, keychain=keychain)
    assert result.image.digest == pushed.digest
    secrets.release(secret_id, "job:pull-1")
    assert not secrets.exists(secret_id)
