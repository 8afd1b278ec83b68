"""The database schema's versions: Alembic migrations that forklift applies itself (no alembic.ini).

`versions/` holds one script per schema revision; 0001 is the schema forklift 0.1.0 made with
`create_all`. Every script is written for any database SQLAlchemy serves: dialect-neutral types,
and table changes as `op.batch_alter_table` (copy-and-move on SQLite, plain ALTER TABLE elsewhere).

When they run:

- the first `forklift.db.engine_for(url)` of a process calls `ensure_current`: one SELECT of the
  recorded revision, and only when that is not the newest one, `upgrade`. So `forklift serve`, a
  CLI command or a test opening a fresh database finds every table, and an old database is
  upgraded before any code reads it. `forklift serve` upgrades first thing and says so;
  `forklift db upgrade` does it on demand.
- A database at a revision this code does not know was upgraded by a newer forklift: `SchemaMismatch`,
  and nothing is changed.
- A database made before migrations (forklift 0.1.0: its tables, no `alembic_version`) is adopted when
  each of its forklift tables is the one 0.1.0 made (columns, keys, indexes): revision 0001 runs
  keeping those tables (0.1.0 created each table when its module was first imported, so a database
  may lack some; they are created), which stamps the database at 0001, and the later revisions follow.

Concurrency: `upgrade` runs in one transaction (a crash leaves the old schema), under an exclusive
lock: flock(2) on `<database file>.lock` for SQLite plus BEGIN IMMEDIATE, an advisory lock on
PostgreSQL. Whoever gets the lock second finds the work done.

The next migration: add `versions/NNNN_<what>.py` (revision "NNNN", down_revision the previous one)
and append "NNNN" to `REVISIONS`. `tests/test_migrations.py` holds `REVISIONS` equal to the scripts
and the migrated schema equal to the models' metadata (`forklift.schema`), so a model changed
without a migration fails there.

This module is below the model modules: it imports none of them (the scripts spell out their tables),
so `forklift.db` can call it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool, StaticPool

from forklift import __version__, dburl
from forklift.errors import ForkliftError
from forklift.fslock import locked

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

DIRECTORY = Path(__file__).parent
# The revisions in versions/, oldest first; the last is the schema this code reads. Spelled out so
# that the check at every engine start needs no Alembic; a test holds it equal to versions/.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005")
INITIAL = "0001"
VERSION_TABLE = "alembic_version"
ADOPT = "forklift.adopt"  # Config.attributes key: the tables of a pre-migration database to keep

# The tables revision 0001 creates: what a database made before migrations may hold.
INITIAL_TABLES = frozenset({
    "secrets", "secret_owners", "credential_functions", "iam_roles", "experiments", "images", "blob_sources",
    "training_jobs", "inference_models", "inference_endpoint_configs", "inference_endpoints",
    "inference_endpoint_instances"})


class SchemaMismatch(ForkliftError, ValueError):
    """The database's schema is not one this forklift can read or upgrade."""


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade` did: `before` None for a database without a schema (or one made before migrations)."""

    database: str  # the URL without its password
    before: str | None
    after: str
    adopted: bool = False  # made before migrations, stamped at 0001

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def __str__(self) -> str:
        if not self.changed:
            return f"database {self.database} is at revision {self.after}, the newest: nothing to do"
        if self.adopted:
            return (f"database {self.database} (made before schema migrations) stamped at revision {INITIAL}"
                    + (f" and upgraded to {self.after}" if self.after != INITIAL else ""))
        if self.before is None:
            return f"database {self.database} created at revision {self.after}"
        return f"database {self.database} upgraded from revision {self.before} to {self.after}"


@dataclass(frozen=True)
class Status:
    database: str
    exists: bool  # False: a SQLite file not made yet
    revision: str | None
    legacy: bool  # forklift tables without a recorded revision: made before migrations

    @property
    def known(self) -> bool:
        return self.revision is None or self.revision in REVISIONS


def head() -> str:
    return REVISIONS[-1]


def shown(url: str | URL) -> str:
    return dburl.shown(url)


def ensure_current(engine: Engine, given: str | None = None) -> None:
    """Bring `engine`'s database to the newest revision unless it is there already (see the module's doc).
    `given`: the URL as the user wrote it, for messages (default: the engine's)."""
    try:
        with engine.connect() as connection:
            revision = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except DBAPIError:  # no such table yet (or the database refused: `upgrade` says why, under its lock)
        revision = None
    if revision == head():
        return
    if engine.url.get_backend_name() == "sqlite" and _memory(engine.url):
        done = upgrade(engine)  # a second engine would open another, empty, in-memory database
    else:
        done = upgrade(given or engine.url)
    if done.changed:
        log.info("%s", done)


def upgrade(target: str | URL | Engine) -> Upgrade:
    """Migrate the database to the newest revision; see the module's doc for what is adopted or refused.
    A URL is one as the user writes it (`forklift.dburl`); messages show it so, without its password."""
    given = target.url if isinstance(target, Engine) else target
    url = dburl.engine_url(given)
    with _exclusive(url):
        engine = target if isinstance(target, Engine) else migration_engine(url)
        try:
            with _connect(engine, given) as connection, connection.begin():
                _lock_postgres(connection)
                before = _recorded(connection)
                if before == head():
                    return Upgrade(shown(given), before, before)
                if before is not None and before not in REVISIONS:
                    raise _too_new(given, before)
                keep = _adoptable(connection, given) if before is None else set()
                _upgrade_to(connection, keep=keep)
                if connection.dialect.name == "sqlite":
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:  # rolls the whole upgrade back
                        raise SchemaMismatch(f"upgrading {shown(given)} would break foreign keys: {broken[:5]}")
                after = _recorded(connection)
                assert after == head(), after
                return Upgrade(shown(given), before, after, adopted=bool(keep))
        finally:
            if engine is not target:
                engine.dispose()


def status(url: str | URL) -> Status:
    """Where the database stands, read without creating or changing anything."""
    given, url = url, dburl.engine_url(url)
    if url.get_backend_name() == "sqlite" and not _memory(url) and not Path(str(url.database)).exists():
        return Status(shown(given), False, None, False)
    engine = create_engine(url, poolclass=NullPool, connect_args=dburl.connect_args(url))
    try:
        with _connect(engine, given) as connection:
            revision = _recorded(connection)
            tables = set(inspect(connection).get_table_names()) & INITIAL_TABLES
    finally:
        engine.dispose()
    return Status(shown(given), True, revision, revision is None and bool(tables))


def history() -> list[tuple[str, str]]:
    """(revision, what it does) for each migration, oldest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(config())
    return [(script.revision, (script.doc or "").strip()) for script in reversed(list(scripts.walk_revisions()))]


def config(url: URL | None = None) -> Config:
    """The Alembic configuration an alembic.ini would hold: these scripts, and the database's URL."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(DIRECTORY))
    if url is not None:  # ConfigParser interpolates %: a URL-quoted password holds them
        cfg.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def migration_engine(url: URL) -> Engine:
    """An engine for migrating: on SQLite every transaction is BEGIN IMMEDIATE (pysqlite would leave DDL
    outside any transaction, and a second migrator must wait for the first before reading the revision)."""
    engine = create_engine(url, poolclass=NullPool, connect_args=dburl.connect_args(url))
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # transactions begin where SQLAlchemy begins them (above)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")  # as forklift.db sets it: a file made here is WAL from the start
    # Off while migrating: a batch operation drops and re-creates a table, and with foreign keys on
    # DROP TABLE first deletes its rows, cascading to the rows that reference them. `upgrade` runs
    # PRAGMA foreign_key_check before it commits instead.
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _connect(engine: Engine, given: str | URL) -> Connection:
    """A connection, or DatabaseUnavailable naming the database as given (no password, no traceback)."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise dburl.unavailable(given, exc) from None


def _memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)


@contextmanager
def _exclusive(url: URL) -> Iterator[None]:
    """One migrator at a time per SQLite file, across processes (the flock is released when the file closes)."""
    if url.get_backend_name() != "sqlite" or _memory(url):
        yield
        return
    path = Path(str(url.database))
    with locked(path.with_name(path.name + ".lock")):
        yield


def _lock_postgres(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":  # held until the transaction ends
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('forklift.migrations'))"))


def _recorded(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _too_new(url: str | URL, revision: str) -> SchemaMismatch:
    return SchemaMismatch(
        f"database {shown(url)} is at schema revision {revision}, which forklift {__version__} does not know "
        f"(its newest is {head()}): a newer forklift upgraded it. Use that forklift version (or a newer one); "
        "`forklift db upgrade` cannot take a schema back, and this database was left as it is")


def _upgrade_to(connection: Connection, revision: str = "head", *,
                keep: set[str] | frozenset[str] = frozenset()) -> None:
    # Imported here, not at the top: Alembic costs ~0.1 s of imports, paid only by a process that
    # actually migrates (every other one stops at the SELECT in ensure_current).
    from alembic import command

    cfg = config(connection.engine.url)
    cfg.attributes["connection"] = connection
    cfg.attributes[ADOPT] = frozenset(keep)
    command.upgrade(cfg, revision)


def _adoptable(connection: Connection, url: str | URL) -> set[str]:
    """The forklift tables of a database without a recorded revision, each checked to be the one
    revision 0001 makes; SchemaMismatch names the first that is not."""
    present = set(inspect(connection).get_table_names()) & INITIAL_TABLES
    if not present:
        return set()
    reference = create_engine("sqlite://", poolclass=StaticPool)
    try:
        with reference.connect() as initial, initial.begin():
            _upgrade_to(initial, INITIAL)
            expected = inspect(initial)
            actual = inspect(connection)
            for table in sorted(present):
                want, have = _shape(expected, table), _shape(actual, table)
                if want != have:
                    raise SchemaMismatch(
                        f"database {shown(url)} has no recorded schema revision, and its table {table!r} is not "
                        f"the one forklift 0.1.0 made ({_difference(want, have)}); forklift will not upgrade it. "
                        "Point FORKLIFT_DATABASE_URL at another database, or move this one aside")
    finally:
        reference.dispose()
    return present


def _shape(inspector, table: str) -> dict[str, object]:
    """A table as far as every dialect reflects it alike: columns and their nullability, keys, indexes."""
    return {
        "columns": sorted((c["name"], bool(c["nullable"])) for c in inspector.get_columns(table)),
        "primary key": sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
        "unique": sorted(sorted(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        "indexes": sorted((i["name"], list(i["column_names"]), bool(i["unique"]))
                          for i in inspector.get_indexes(table) if not i.get("duplicates_constraint")),
        "foreign keys": sorted((fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
                               for fk in inspector.get_foreign_keys(table)),
    }


def _difference(want: dict[str, object], have: dict[str, object]) -> str:
    return "; ".join(f"{key}: expected {want[key]}, found {have[key]}" for key in want if want[key] != have[key])
