"""Training jobs in the database: insert, read, update under a transaction, and keyset listing.

Every write goes through `update(name, change)`, which loads the row, lets `change` mutate it and
commits, so concurrent runner threads and API requests never overwrite each other's columns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from forklift.control import events
from forklift.control.models import TrainingJobRow
from forklift.control.tags import replace_rows
from forklift.db import session_factory

ACTIVE = ("InProgress", "Stopping")
SORT_COLUMNS = {"CreationTime": TrainingJobRow.created_at, "Name": TrainingJobRow.name,
                "Status": TrainingJobRow.status}


class JobExists(Exception):
    pass


@dataclass(frozen=True)
class ListQuery:
    name_contains: str | None = None
    status: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    sort_by: str = "CreationTime"
    descending: bool = True
    after: tuple | None = None  # keyset position of the last item of the previous page
    limit: int = 10


def sort_key(row: TrainingJobRow, sort_by: str) -> tuple:
    """The keyset position of `row` in a listing sorted by `sort_by` (always ends with the name)."""
    if sort_by == "Name":
        return (row.name,)
    value = row.status if sort_by == "Status" else row.created_at
    return (value, row.name)


class JobStore:
    def __init__(self, database_url: str, sessions: sessionmaker[Session] | None = None):
        self._sessions = sessions or session_factory(database_url)
        self._seq_lock = threading.Lock()

    def insert(self, row: TrainingJobRow) -> TrainingJobRow:
        try:
            with self._seq_lock, self._sessions.begin() as session:
                taken = session.scalar(select(TrainingJobRow.name).where(
                    func.lower(TrainingJobRow.name) == row.name.lower()))
                if taken is not None:
                    raise JobExists(taken)
                row.seq = (session.scalar(select(func.max(TrainingJobRow.seq))) or 0) + 1
                session.add(row)
                replace_rows(session, row.arn, row.request.get("Tags") or [])
        except IntegrityError:  # the same name committed by another writer since the check
            raise JobExists(row.name) from None
        events.training_job(row.name, None, row.status, row.secondary_status)
        return row

    def get(self, name: str) -> TrainingJobRow | None:
        with self._sessions() as session:
            return session.get(TrainingJobRow, name)

    def has_arn(self, arn: str) -> bool:
        with self._sessions() as session:
            return session.scalar(select(TrainingJobRow.name).where(TrainingJobRow.arn == arn).limit(1)) is not None

    def update(self, name: str, change: Callable[[TrainingJobRow], Any]) -> TrainingJobRow | None:
        """Apply `change` to the row in one transaction; LastModifiedTime moves with every write."""
        with self._sessions.begin() as session:
            row = session.get(TrainingJobRow, name, with_for_update=True)
            if row is None:
                return None
            before = (row.status, row.secondary_status)
            change(row)
            row.modified_at = time.time()
            # JSON columns are compared by value on flush only when reassigned: copy to be sure.
            row.transitions = [dict(t) for t in row.transitions]
            after = (row.status, row.secondary_status, row.failure_reason)
        events.training_job(name, before, *after)
        return row

    def active(self) -> list[TrainingJobRow]:
        with self._sessions() as session:
            rows = session.scalars(select(TrainingJobRow).where(TrainingJobRow.status.in_(ACTIVE))
                                   .order_by(TrainingJobRow.seq))
            return list(rows)

    def list(self, q: ListQuery) -> tuple[list[TrainingJobRow], bool]:
        """One page and whether more follow."""
        t = TrainingJobRow
        where = []
        if q.name_contains:
            where.append(func.lower(t.name).contains(q.name_contains.lower(), autoescape=True))
        if q.status:
            where.append(t.status == q.status)
        for column, bound, op in ((t.created_at, q.created_after, "gt"), (t.created_at, q.created_before, "lt"),
                                  (t.modified_at, q.modified_after, "gt"), (t.modified_at, q.modified_before, "lt")):
            if bound is not None:
                where.append(column > bound if op == "gt" else column < bound)
        column = SORT_COLUMNS[q.sort_by]
        if q.after is not None:
            where.append(_after(column, q.after, q.sort_by, q.descending))
        order = [column.desc() if q.descending else column.asc()]
        if q.sort_by != "Name":
            order.append(t.name.desc() if q.descending else t.name.asc())
        stmt = select(t).where(*where).order_by(*order).limit(q.limit + 1)
        with self._sessions() as session:
            rows = list(session.scalars(stmt))
        return rows[:q.limit], len(rows) > q.limit

    def names(self, statuses: Sequence[str] | None = None) -> list[str]:
        with self._sessions() as session:
            stmt = select(TrainingJobRow.name)
            if statuses:
                stmt = stmt.where(TrainingJobRow.status.in_(statuses))
            return list(session.scalars(stmt))


def _after(column, position: tuple, sort_by: str, descending: bool):
    name_col = TrainingJobRow.name
    if sort_by == "Name":
        (name,) = position
        return name_col < name if descending else name_col > name
    value, name = position
    if descending:
        return or_(column < value, and_(column == value, name_col < name))
    return or_(column > value, and_(column == value, name_col > name))
