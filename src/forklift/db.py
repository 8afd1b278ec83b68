"""The database every layer keeps its records in: SQLAlchemy, SQLite under FORKLIFT_HOME by default.

`FORKLIFT_DATABASE_URL` names another: `postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE` is
PostgreSQL through psycopg 3 (`forklift.dburl` says what is accepted). A PostgreSQL engine pings a
pooled connection before handing it out (a server outlives restarts of the database and idle
timeouts in between) and recycles connections after half an hour.

Every table is declared on `Base.metadata` by the module that uses it; `forklift.schema` imports
them all when the whole metadata is needed. The schema itself is made by the Alembic migrations
of `forklift.migrations`: the first `engine_for(url)` of a process brings the database to the
newest revision (creating it, or upgrading one an older forklift made), so no code here creates
tables.
"""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from forklift import dburl, migrations


# No naming convention on Base.metadata beyond SQLAlchemy's default one for indexes (ix_<table>_<column>,
# the names the indexes have). Every database made before migrations holds its primary keys, unique
# constraints and its one foreign key unnamed; a convention would name them in fresh databases only, so
# fresh and upgraded databases would differ and no later migration could name a constraint for both.
# A migration that alters one of those unnamed constraints on SQLite passes `naming_convention=` to
# `op.batch_alter_table` (Alembic's way for reflected unnamed constraints); a new constraint gets an
# explicit `name=` in its model and in its migration.
class Base(DeclarativeBase):
    pass


_engines: dict[str, Engine] = {}
_lock = threading.Lock()
# A server's threads (API requests, job runners, endpoint workers) each hold a session briefly.
POOL_SIZE = 10
POOL_OVERFLOW = 20
POOL_RECYCLE_SECONDS = 1800


def engine_for(url: str) -> Engine:
    """The process's engine for `url` (as the user wrote it: `forklift.dburl`), its database at the schema
    this code reads (see `forklift.migrations.ensure_current`: a cheap check, migrations only when due)."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            target = dburl.engine_url(url)
            if dburl.backend(target) == "postgresql":
                engine = create_engine(target, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                                       pool_recycle=POOL_RECYCLE_SECONDS, connect_args=dburl.connect_args(target))
            else:
                engine = create_engine(target)
                event.listen(engine, "connect", _sqlite_pragmas)
            try:
                migrations.ensure_current(engine, url)
            except BaseException:
                engine.dispose()
                raise
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
