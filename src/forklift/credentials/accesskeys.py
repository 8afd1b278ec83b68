"""API access keys: who may call `forklift serve`, as AWS clients already say it (SigV4).

    keys = AccessKeys(settings)
    key = keys.create(name="ci")          # AccessKey with its secret: shown once, stored encrypted
    keys.create(name="ro", policy=text)   # limited to what an IAM-style policy document allows
    keys.secret_of(key.access_key_id)     # what the server verifies a signature with (None: unknown)
    keys.list(); keys.delete(key_id)

A key id looks like AWS's (20 characters, `FKIA…`) and its secret is 40 characters; the secret is
kept Fernet-encrypted with the key of `secrets` (`$FORKLIFT_HOME/secret.key`), so the database alone
reveals no secret. A key without a policy has full access; one with a policy (checked by
`forklift.credentials.policy`, kept as JSON in `access_keys.policy`) is allowed only what it allows, as
`forklift.api.authz` decides per request.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from forklift.config import Settings
from forklift.credentials.errors import AccessKeyExists, AccessKeyNotFound, CredentialsError
from forklift.credentials.models import AccessKeyRow, sessions_for
from forklift.credentials.policy import PolicyDocument, validate_policy
from forklift.credentials.secrets import load_key

KEY_PREFIX = "FKIA"
_KEY_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_NAME = re.compile(r"[A-Za-z0-9_.@+=,-]{1,64}")


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    name: str | None
    created_at: float
    secret_access_key: str | None = None  # only right after `create`
    policy: PolicyDocument | None = None  # None: full access

    def to_json(self) -> dict[str, object]:
        return {"AccessKeyId": self.access_key_id, "Name": self.name,
                "CreateDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
                "HasPolicy": self.policy is not None}


class AccessKeys:
    def __init__(self, settings: Settings, *, sessions: sessionmaker[Session] | None = None):
        self.settings = settings
        self._sessions = sessions or sessions_for(settings)

    def create(self, name: str | None = None, policy: str | Mapping[str, object] | None = None) -> AccessKey:
        """A new key; `policy` (an IAM-style document, JSON text or parsed) limits what it may do."""
        if name is not None and not _NAME.fullmatch(name):
            raise CredentialsError(f"key name {name!r}: use 1 to 64 letters, digits and _.@+=,-")
        document = validate_policy(policy) if policy is not None else None  # InvalidPolicy names the statement
        key_id = KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
        ciphertext = load_key(self.settings.home).encrypt(secret.encode())
        now = time.time()
        with self._sessions.begin() as session:
            if name is not None and session.scalar(select(AccessKeyRow).where(AccessKeyRow.name == name)):
                raise AccessKeyExists(f"a key named {name} exists already: delete it first "
                                      "(`forklift keys delete ID`) or choose another name")
            session.add(AccessKeyRow(access_key_id=key_id, name=name, ciphertext=ciphertext, created_at=now,
                                     policy=json.dumps(document) if document is not None else None))
        return AccessKey(key_id, name, now, secret, document)

    def list(self) -> list[AccessKey]:
        with self._sessions() as session:
            rows = session.scalars(select(AccessKeyRow).order_by(AccessKeyRow.created_at)).all()
            return [_info(row) for row in rows]

    def get(self, key_id_or_name: str) -> AccessKey:
        with self._sessions() as session:
            row = session.get(AccessKeyRow, key_id_or_name) or session.scalar(
                select(AccessKeyRow).where(AccessKeyRow.name == key_id_or_name))
            if row is None:
                raise AccessKeyNotFound(f"no access key {key_id_or_name}: `forklift keys list` shows them")
            return _info(row)

    def delete(self, key_id_or_name: str) -> AccessKey:
        key = self.get(key_id_or_name)
        with self._sessions.begin() as session:
            session.execute(delete(AccessKeyRow).where(AccessKeyRow.access_key_id == key.access_key_id))
        return key

    def any(self) -> bool:
        with self._sessions() as session:
            return bool(session.scalar(select(func.count()).select_from(AccessKeyRow)))

    def secret_of(self, key_id: str) -> tuple[str, AccessKey] | None:
        """The secret key and the key's description (with its policy), for verifying a signature and
        authorizing what it signs; None for an unknown id."""
        with self._sessions() as session:
            row = session.get(AccessKeyRow, key_id)
            if row is None:
                return None
            return load_key(self.settings.home).decrypt(row.ciphertext).decode(), _info(row)


def _info(row: AccessKeyRow) -> AccessKey:
    # Stored only after validate_policy accepted it: read back as the checked document it was.
    policy = validate_policy(row.policy) if row.policy else None
    return AccessKey(row.access_key_id, row.name, row.created_at, policy=policy)
