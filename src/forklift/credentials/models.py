"""The credentials layer's tables. Secret values live only in `secrets.ciphertext` (Fernet-encrypted);
every other column is safe to show."""

from __future__ import annotations

import time

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from forklift.config import Settings
from forklift.db import Base


class SecretRow(Base):
    __tablename__ = "secrets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "credentials" | "function-code"
    registry_host: Mapped[str | None] = mapped_column("registry", String(255), nullable=True)  # scoped to one registry
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class SecretOwnerRow(Base):
    """Who holds a secret (a job, an experiment and its clones, a function). The last release deletes it."""

    __tablename__ = "secret_owners"
    __table_args__ = (UniqueConstraint("secret_id", "owner"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_id: Mapped[str] = mapped_column(String(32), ForeignKey("secrets.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)


class FunctionRow(Base):
    """A credentials-provider function. Its code (handler source or command) is a secret: it may embed one."""

    __tablename__ = "credential_functions"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    runtime: Mapped[str] = mapped_column(String(16))  # "python" | "exec"
    handler: Mapped[str] = mapped_column(String(255))  # python: function name; exec: "-"
    origin: Mapped[str] = mapped_column(Text)  # python: the registered file; exec: the program path
    timeout: Mapped[float] = mapped_column(Float)
    code_secret_id: Mapped[str] = mapped_column(String(32))
    code_sha256: Mapped[str] = mapped_column(String(64))
    code_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)


class RoleRow(Base):
    __tablename__ = "iam_roles"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    policy: Mapped[str | None] = mapped_column(Text, nullable=True)  # inline IAM-style JSON document
    managed: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of managed policy names
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class AccessKeyRow(Base):
    """An API access key (what SigV4 requests are signed with). The secret key is Fernet-encrypted."""

    __tablename__ = "access_keys"
    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    policy: Mapped[str | None] = mapped_column(Text, nullable=True)  # IAM-style JSON; None: full access


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    """Sessions on forklift's database (its schema brought up to date by `engine_for`)."""
    from forklift.db import session_factory

    return session_factory(settings.database_url)
