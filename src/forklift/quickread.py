"""Read-only listings of the default SQLite database with the standard library.

Importing SQLAlchemy takes about 0.2 s, longer than a listing should take to answer. The commands
that only list (`forklift images ls`, `forklift experiments list`) read their rows with `sqlite3`
instead; anything that writes, and a database named by `FORKLIFT_DATABASE_URL` that is not the
default SQLite file, goes through the ORM (`select` answers None, and the caller falls back).
`tests/test_quickread.py` holds the tables and columns named by callers to the ORM's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from forklift.config import Settings

SQLITE_PREFIX = "sqlite:///"


def database_file(settings: Settings) -> Path | None:
    url = settings.database_url
    return Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None


def select(settings: Settings, table: str, columns: Sequence[str], *, order_by: str,
           json_columns: Sequence[str] = ()) -> list[dict[str, Any]] | None:
    """Every row of `table` as {column: value}, in `order_by` order (an SQL ORDER BY clause of the
    caller's own, never user input); None when only the ORM can read this database."""
    path = database_file(settings)
    if path is None:
        return None
    if not path.exists():
        return []  # nothing was ever stored
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
            cursor = db.execute(f'SELECT {", ".join(columns)} FROM "{table}" ORDER BY {order_by}')  # noqa: S608
            rows = [dict(zip(columns, values, strict=True)) for values in cursor]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        return None  # an older schema, or the file is busy being migrated: the ORM knows better
    for row in rows:
        for column in json_columns:
            row[column] = json.loads(row[column]) if row[column] else {}
    return rows
