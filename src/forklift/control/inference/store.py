"""Inference rows in the database: insert, read, update in one transaction, list, delete.

Names are unique case-insensitively (AWS lower-cases them in ARNs). Every endpoint write goes
through `update_endpoint(name, change)`, so the fleet threads and API requests never overwrite
each other's columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from forklift.control import events
from forklift.control.inference.errors import AlreadyExists
from forklift.control.inference.models import EndpointConfigRow, EndpointInstanceRow, EndpointRow, ModelRow
from forklift.control.tags import drop_rows, replace_rows
from forklift.db import session_factory

Row = TypeVar("Row", ModelRow, EndpointConfigRow, EndpointRow)


class InferenceStore:
    def __init__(self, database_url: str, sessions: sessionmaker[Session] | None = None):
        self._sessions = sessions or session_factory(database_url)

    # -- generic ---------------------------------------------------------------------------
    def insert(self, row: Row, what: str, tags: Sequence[Mapping[str, str]] = ()) -> Row:
        """Add `row` with its `tags` (the request's `Tags`), or raise AlreadyExists."""
        kind = type(row)
        exists = AlreadyExists(f"Cannot create already existing {what} \"{row.arn}\".")
        try:
            with self._sessions.begin() as session:
                if session.scalar(select(kind.name).where(func.lower(kind.name) == row.name.lower())) is not None:
                    raise exists
                session.add(row)
                replace_rows(session, row.arn, tags)
        except IntegrityError:  # the same name committed by another writer since the check
            raise exists from None
        if isinstance(row, EndpointRow):
            events.endpoint(row.name, None, row.status)
        return row

    def get(self, kind: type[Row], name: str) -> Row | None:
        with self._sessions() as session:
            return session.get(kind, name)

    def has_arn(self, kind: type[Row], arn: str) -> bool:
        with self._sessions() as session:
            return session.scalar(select(kind.name).where(kind.arn == arn).limit(1)) is not None

    def all(self, kind: type[Row]) -> list[Row]:
        with self._sessions() as session:
            return list(session.scalars(select(kind)))

    def delete(self, kind: type[Row], name: str) -> bool:
        with self._sessions.begin() as session:
            arn = session.scalar(select(kind.arn).where(kind.name == name))
            deleted = session.execute(delete(kind).where(kind.name == name)).rowcount > 0
            if arn is not None:
                drop_rows(session, arn)
        if deleted and kind is EndpointRow:
            events.endpoint(name, None, "Deleted")
        return deleted

    # -- endpoints ---------------------------------------------------------------------------
    def update_endpoint(self, name: str, change: Callable[[EndpointRow], Any]) -> EndpointRow | None:
        with self._sessions.begin() as session:
            row = session.get(EndpointRow, name, with_for_update=True)
            if row is None:
                return None
            before = row.status
            change(row)
            row.modified_at = time.time()
            # JSON columns are flushed only when reassigned: copy so in-place edits are saved.
            row.variants = [dict(v) for v in row.variants or []]
            if row.pending_variants is not None:
                row.pending_variants = [dict(v) for v in row.pending_variants]
            after = (row.status, row.failure_reason)
        events.endpoint(name, before, *after)
        return row

    # -- instances ---------------------------------------------------------------------------
    def add_instance(self, row: EndpointInstanceRow) -> None:
        with self._sessions.begin() as session:
            session.merge(row)

    def instances(self, endpoint: str) -> list[EndpointInstanceRow]:
        with self._sessions() as session:
            return list(session.scalars(select(EndpointInstanceRow).where(EndpointInstanceRow.endpoint == endpoint)))

    def remove_instance(self, container_name: str) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(EndpointInstanceRow).where(EndpointInstanceRow.container_name == container_name))
