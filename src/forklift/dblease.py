"""One active `forklift serve` per database: the lease a server holds while it runs.

Two servers on one database would both admit jobs, re-adopt the same containers after a restart and
heal the same endpoints, each believing its in-memory state (the scheduler's queue, the routes) is
the only one. So a server takes the database's lease before it migrates or binds, and a second one
refuses to start, naming the holder.

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`, key `KEY`) on a connection the lease
  keeps for the server's life, in autocommit (it holds no transaction open), its `application_name`
  `forklift serve pid N on HOST`. PostgreSQL drops the lock when that session ends, so a server that
  exits or is killed leaves no stale lease. The refusal names the holder from `pg_locks` and
  `pg_stat_activity`. A session can also end under a running server (the database restarted, the
  connection was cut): `check`, run every `CHECK_SECONDS` by a watcher thread, takes the lock again on
  a new connection, and when another server took it in between, calls `on_lost` (the server stops).
- SQLite: flock(2) on `<database file>.serve.lock` (the kernel drops it with the process), holding
  the holder's line; besides the per-home `server.json` claim (`forklift.serverfile`), this covers
  homes that share one file through FORKLIFT_DATABASE_URL. An in-memory database needs none.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from forklift import dburl, fslock
from forklift.errors import ForkliftError

log = logging.getLogger(__name__)

KEY = int.from_bytes(b"forklift", "big")  # the advisory lock's key; advisory locks are per database
CHECK_SECONDS = 10.0
# Noticed on an idle connection within about a minute when the peer vanishes without a word.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}

_HOLDER = text("""
SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = :high AND l.objid::bigint = :low
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
""")


class ServerActive(ForkliftError):
    """Another forklift server holds this database's lease."""


def holder_name(pid: int | None = None) -> str:
    """How a lease names its holder: `forklift serve pid N on HOST` (PostgreSQL keeps 63 bytes of it)."""
    return f"forklift serve pid {pid or os.getpid()} on {socket.gethostname()}"


def _refusal(given: str | URL, holder: str) -> ServerActive:
    return ServerActive(
        f"another forklift server is active on the database {dburl.shown(given)} ({holder}); one server per "
        "database: stop that one first (`forklift server stop`, or Ctrl-C where it runs), or point "
        f"{dburl.SETTING} at a database of this server's own")


class Lease:
    """What `acquire` returns; `release` (or the end of a `with` block) gives the database back."""

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class _NoLease(Lease):
    def release(self) -> None:
        pass


class FileLease(Lease):
    """SQLite: an exclusive flock on the database file's `.serve.lock`, released with the descriptor."""

    def __init__(self, given: str | URL, database: Path, holder: str) -> None:
        self.path = database.with_name(database.name + ".serve.lock")
        try:
            self._fd: int | None = fslock.open_lock_file(self.path)
        except OSError as exc:
            raise ForkliftError(f"cannot open {self.path} (the lease of the database {dburl.shown(given)}): "
                                f"{exc.strerror}") from None
        if not fslock.acquire(self._fd, blocking=False):
            named = os.pread(self._fd, 256, 0).decode(errors="replace").strip() or "its holder did not say who"
            self.release()
            raise _refusal(given, named)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{holder}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock; the file stays (unlinking it would race a new holder)
            self._fd = None


class PostgresLease(Lease):
    """PostgreSQL: the session advisory lock on a connection of its own (see the module's doc)."""

    def __init__(self, given: str | URL, holder: str, *, on_lost: Callable[[str], None] | None = None,
                 check_seconds: float = CHECK_SECONDS) -> None:
        self.given = given
        self.holder = holder
        self.on_lost = on_lost
        url = dburl.engine_url(given)
        self._engine = create_engine(url, poolclass=NullPool,
                                     connect_args={**dburl.connect_args(url, holder[:63]), **KEEPALIVES})
        self._connection: Connection | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        try:
            self._connection = self._take()
        except BaseException:
            self._engine.dispose()
            raise
        if on_lost is not None:
            self._watcher = threading.Thread(target=self._watch, args=(check_seconds,), name="forklift-lease",
                                             daemon=True)
            self._watcher.start()

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend that holds the lock (None while the lease has no connection)."""
        if self._connection is None:
            return None
        return int(self._connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def _take(self) -> Connection:
        try:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as exc:
            raise dburl.unavailable(self.given, exc) from None
        try:
            high, low = KEY >> 32, KEY & 0xFFFFFFFF
            if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": KEY}).scalar_one():
                return connection
            row = connection.execute(_HOLDER, {"high": high, "low": low}).first()
        except BaseException:
            connection.close()
            raise
        connection.close()
        raise _refusal(self.given, _describe(row))

    def check(self) -> bool:
        """Whether the lease still holds the lock, taking it again on a new connection when its session
        ended. False (and `on_lost` told why) when another server holds it now; a database that cannot
        be reached leaves the lease as it is, to be tried again at the next check."""
        try:
            if self._connection is not None:
                self._connection.exec_driver_sql("SELECT 1")
                return True
        except DBAPIError:
            log.warning("the connection holding this server's lease on the database %s ended; taking the lease "
                        "again", dburl.shown(self.given))
            self._close()
        try:
            self._connection = self._take()
        except dburl.DatabaseUnavailable as exc:
            log.warning("%s; trying again in a moment", exc)
            return True
        except DBAPIError as exc:  # connected, then cut mid-query: as unreachable, tried again at the next check
            log.warning("taking the lease on the database %s again failed (%s); trying again in a moment",
                        dburl.shown(self.given), type(exc.orig).__name__ if exc.orig else type(exc).__name__)
            return True
        except ServerActive as exc:
            if self.on_lost is not None:
                self.on_lost(str(exc))
            return False
        log.warning("this server holds the lease on the database %s again", dburl.shown(self.given))
        return True

    def _watch(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            if not self.check():
                return

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except DBAPIError:
                connection.invalidate()

    def release(self) -> None:
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": KEY})
            except DBAPIError:
                pass  # the session is gone, and the lock with it
        self._close()
        self._engine.dispose()


def _describe(row) -> str:
    if row is None:  # released a moment ago, or not visible to this database user
        return "its holder is not visible to this database user"
    pid, name, address, since = row
    where = f" from {address}" if address else ""
    when = f" since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if since is not None else ""
    return f"{name or 'an unnamed session'}, PostgreSQL backend {pid}{where}{when}"


def acquire(url: str, *, on_lost: Callable[[str], None] | None = None, holder: str | None = None,
            check_seconds: float = CHECK_SECONDS) -> Lease:
    """This process's lease on the database `url` (as the user wrote it); ServerActive when another server
    holds it, DatabaseUnavailable when the database cannot be reached. `on_lost` (PostgreSQL) is told
    when the lease was lost to another server while this one ran; None: no watcher."""
    parsed = dburl.engine_url(url)
    holder = holder or holder_name()
    if dburl.backend(parsed) == "postgresql":
        return PostgresLease(url, holder, on_lost=on_lost, check_seconds=check_seconds)
    database = parsed.database
    if database in (None, "", ":memory:") or "mode=memory" in str(parsed.query):
        return _NoLease()
    return FileLease(url, Path(database), holder)
