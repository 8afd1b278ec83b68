"""The database every layer keeps its records in: SQLAlchemy, SQLite under FORKLIFT_HOME by default.

A URL (`FORKLIFT_DATABASE_URL`) selects another engine, e.g. Postgres, without code changes.
"""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    pass


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(url, future=True)
            if url.startswith("sqlite"):
                event.listen(engine, "connect", _sqlite_pragmas)
            Base.metadata.create_all(engine)
            _engines[url] = engine
        return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the server and CLI processes read while one writes; the busy timeout absorbs short write locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)
