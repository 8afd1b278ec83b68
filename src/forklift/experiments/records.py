"""The experiments table: what an experiment is beyond its training jobs.

Each row holds the experiment as the user gave it (container, command, machine type as written, env,
hyperparameters, inputs), where its workspace archive lives, which training job runs it, what it was
cloned from, and the *id* of its stored registry credentials — never the credentials themselves
(they are in `forklift.credentials.secrets`, encrypted, owned by `experiment:<name>`).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from forklift.config import Settings
from forklift.db import Base
from forklift.experiments.errors import ExperimentError


class ExperimentNotFound(ExperimentError, LookupError):
    def __str__(self) -> str:
        return f"no experiment named {self.args[0]!r} (see `forklift experiments list`)"


class ExperimentExists(ExperimentError, ValueError):
    pass


class ExperimentRow(Base):
    __tablename__ = "experiments"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    container: Mapped[str] = mapped_column(String(1024))  # as given
    image: Mapped[str] = mapped_column(String(1024))  # normalized reference the job pulls
    command: Mapped[str | None] = mapped_column(Text, nullable=True)
    workspace: Mapped[str | None] = mapped_column(Text, nullable=True)  # the directory as given
    workspace_uri: Mapped[str | None] = mapped_column(Text, nullable=True)  # s3://… archive of it
    machine_type: Mapped[str] = mapped_column(String(64))  # as given
    instance_type: Mapped[str] = mapped_column(String(64))
    env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # channel name -> URI
    max_runtime: Mapped[int] = mapped_column(Integer)
    secret_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cloned_from: Mapped[str | None] = mapped_column(String(63), nullable=True)
    job_name: Mapped[str | None] = mapped_column(String(63), nullable=True)  # the current (latest) run
    runs: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)  # the principal that created it

    @property
    def owner(self) -> str:
        """The owner name this experiment holds its stored credentials under."""
        return f"experiment:{self.name}"


class ExperimentStore:
    def __init__(self, settings: Settings, *, sessions: sessionmaker[Session] | None = None):
        from forklift.db import session_factory

        self._sessions = sessions or session_factory(settings.database_url)

    def insert(self, row: ExperimentRow) -> ExperimentRow:
        with self._sessions.begin() as session:
            if session.get(ExperimentRow, row.name) is not None:
                raise ExperimentExists(f"an experiment named {row.name!r} already exists; choose another --name")
            session.add(row)
        return row

    def get(self, name: str) -> ExperimentRow:
        with self._sessions() as session:
            row = session.get(ExperimentRow, name)
            if row is None:
                raise ExperimentNotFound(name)
            return row

    def exists(self, name: str) -> bool:
        with self._sessions() as session:
            return session.get(ExperimentRow, name) is not None

    def list(self) -> list[ExperimentRow]:
        with self._sessions() as session:
            return list(session.scalars(select(ExperimentRow).order_by(ExperimentRow.created_at.desc())))

    def update(self, name: str, **values: Any) -> ExperimentRow:
        with self._sessions.begin() as session:
            row = session.get(ExperimentRow, name)
            if row is None:
                raise ExperimentNotFound(name)
            for key, value in values.items():
                setattr(row, key, value)
        return row

    def delete(self, name: str) -> None:
        with self._sessions.begin() as session:
            row = session.get(ExperimentRow, name)
            if row is None:
                raise ExperimentNotFound(name)
            session.delete(row)

    def sharing_workspace(self, uri: str) -> list[str]:
        with self._sessions() as session:
            return list(session.scalars(select(ExperimentRow.name).where(ExperimentRow.workspace_uri == uri)))
