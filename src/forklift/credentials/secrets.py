"""Secrets at rest: Fernet-encrypted rows, shared by owners, deleted with the last owner.

The key is `$FORKLIFT_HOME/secret.key` (0600), created once, atomically: concurrent first uses agree on
one key. The database holds only ciphertext; anyone with the database but not the key file learns
nothing but ids, kinds and registry hosts.

Owners make Gradient-style lifetimes work: credentials given with an experiment are `put` with the
experiment as owner; a clone `add_owner`s the same id (a reference, not a copy); each one `release`s
the id when it ends, and the last release deletes the row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import CursorResult, delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from forklift.config import Settings
from forklift.credentials import ANONYMOUS, Credentials
from forklift.credentials.errors import SecretNotFound, SecretUnreadable
from forklift.credentials.models import SecretOwnerRow, SecretRow, sessions_for

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"
CREDENTIALS = "credentials"


def load_key(home: Path) -> Fernet:
    """The Fernet key of this FORKLIFT_HOME, created (0600) on first use."""
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".secret.key.", dir=home)  # 0600 from the start
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # create-if-absent: the first writer's key wins
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); restricting it to 0600", path, mode)
        os.chmod(path, 0o600)
    try:
        return Fernet(path.read_bytes().strip())
    except ValueError:
        raise SecretUnreadable(f"{path} is not a Fernet key") from None


def derived_key(home: Path, purpose: str) -> bytes:
    """A key for `purpose` (e.g. signing a claim) derived from this home's secret key, which it never reveals:
    only who can read `secret.key` can compute it."""
    load_key(home)  # created on first use, permissions checked
    return hmac.new((home / KEY_FILE).read_bytes().strip(), purpose.encode(), hashlib.sha256).digest()


def _credentials_to_json(credentials: Credentials) -> bytes:
    fields = {"username": credentials.username, "password": credentials.password,
              "identity_token": credentials.identity_token, "registry_token": credentials.registry_token}
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def _credentials_from_json(data: bytes) -> Credentials:
    fields = json.loads(data)
    return Credentials(fields.get("username"), fields.get("password"), fields.get("identity_token"),
                       fields.get("registry_token"))


class SecretStore:
    def __init__(self, settings: Settings, *, sessions: sessionmaker[Session] | None = None):
        self.settings = settings
        self._sessions = sessions or sessions_for(settings)
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    @property
    def fernet(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                self._fernet = load_key(self.settings.home)
            return self._fernet

    # -- writing ------------------------------------------------------------------------------
    def put(self, credentials: Credentials, owner: str, *, registry: str | None = None) -> str:
        """Encrypt and keep `credentials` for `owner`; returns the secret id to record instead of them."""
        return self.put_bytes(_credentials_to_json(credentials), owner, kind=CREDENTIALS, registry=registry)

    def put_bytes(self, data: bytes, owner: str, *, kind: str, registry: str | None = None) -> str:
        secret_id = uuid.uuid4().hex
        ciphertext = self.fernet.encrypt(data)
        with self._sessions.begin() as session:
            session.add(SecretRow(id=secret_id, kind=kind, registry_host=registry, ciphertext=ciphertext))
            session.flush()
            session.add(SecretOwnerRow(secret_id=secret_id, owner=owner))
        return secret_id

    def add_owner(self, secret_id: str, owner: str) -> None:
        """Share an existing secret (a clone reuses its original's credentials)."""
        with self._sessions.begin() as session:
            # Locked (PostgreSQL; SQLite's write lock serializes writers anyway): a release deleting the
            # secret at this moment finishes first, and this finds it gone.
            if session.get(SecretRow, secret_id, with_for_update=True) is None:
                raise SecretNotFound(f"secret {secret_id} no longer exists")
            exists = session.scalar(select(SecretOwnerRow.id).where(
                SecretOwnerRow.secret_id == secret_id, SecretOwnerRow.owner == owner))
            if exists is None:
                session.add(SecretOwnerRow(secret_id=secret_id, owner=owner))

    def release(self, secret_id: str, owner: str) -> bool:
        """`owner` is done with the secret; True when that was the last owner and it is now deleted."""
        with self._sessions.begin() as session:
            session.execute(delete(SecretOwnerRow).where(
                SecretOwnerRow.secret_id == secret_id, SecretOwnerRow.owner == owner))
            return self._delete_if_unowned(session, secret_id)

    def release_owner(self, owner: str) -> int:
        """Release every secret `owner` holds (a job ended); returns how many were deleted."""
        with self._sessions.begin() as session:
            # Write first (DELETE … RETURNING): SQLite cannot upgrade a read snapshot another connection has passed.
            ids = set(session.scalars(delete(SecretOwnerRow).where(SecretOwnerRow.owner == owner)
                                      .returning(SecretOwnerRow.secret_id)))
            return sum(self._delete_if_unowned(session, secret_id) for secret_id in ids)

    def _delete_if_unowned(self, session: Session, secret_id: str) -> bool:
        # The secret's row locked before its owners are counted: two releases of its last two owners at
        # once would otherwise each still see the other's row (PostgreSQL reads what was committed; on
        # SQLite the DELETE before this already holds the database's write lock) and neither delete it.
        if session.get(SecretRow, secret_id, with_for_update=True) is None:
            return False
        left = session.scalar(select(func.count()).select_from(SecretOwnerRow).where(
            SecretOwnerRow.secret_id == secret_id))
        if left:
            return False
        if session.bind is not None and session.bind.dialect.name == "sqlite":
            session.execute(text("PRAGMA secure_delete=ON"))  # overwrite the freed pages too
        # A DML statement's result is a CursorResult (the one with rowcount); Session.execute is typed as Result.
        deleted = cast(CursorResult[Any], session.execute(delete(SecretRow).where(SecretRow.id == secret_id)))
        return deleted.rowcount > 0

    # -- reading ------------------------------------------------------------------------------
    def get(self, secret_id: str) -> Credentials:
        return _credentials_from_json(self.get_bytes(secret_id))

    def get_bytes(self, secret_id: str) -> bytes:
        with self._sessions() as session:
            row = session.get(SecretRow, secret_id)
            if row is None:
                raise SecretNotFound(f"secret {secret_id} no longer exists (released by its last owner)")
            ciphertext = row.ciphertext
        try:
            return self.fernet.decrypt(ciphertext)
        except InvalidToken:
            raise SecretUnreadable(
                f"secret {secret_id} cannot be decrypted with {self.settings.home / KEY_FILE} (was the key replaced?)"
            ) from None

    def registry_of(self, secret_id: str) -> str | None:
        with self._sessions() as session:
            row = session.get(SecretRow, secret_id)
            if row is None:
                raise SecretNotFound(f"secret {secret_id} no longer exists")
            return row.registry_host

    def owners(self, secret_id: str) -> list[str]:
        with self._sessions() as session:
            return sorted(session.scalars(select(SecretOwnerRow.owner).where(SecretOwnerRow.secret_id == secret_id)))

    def exists(self, secret_id: str) -> bool:
        with self._sessions() as session:
            return session.get(SecretRow, secret_id) is not None

    def keychain(self, secret_id: str) -> SecretKeychain:
        return SecretKeychain(self, secret_id)


class SecretKeychain:
    """Explicit credentials kept in the SecretStore, decrypted on first use and held in memory only."""

    def __init__(self, store: SecretStore, secret_id: str):
        self._store = store
        self.secret_id = secret_id
        self._loaded: tuple[Credentials, str | None] | None = None
        self._lock = threading.Lock()

    def resolve(self, registry: str, repository: str) -> Credentials:
        with self._lock:
            if self._loaded is None:
                self._loaded = (self._store.get(self.secret_id), self._store.registry_of(self.secret_id))
            credentials, only_for = self._loaded
        return credentials if only_for is None or only_for == registry else ANONYMOUS
