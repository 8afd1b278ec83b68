"""What a database URL (`FORKLIFT_DATABASE_URL`) may name, and how it is shown.

Two engines are supported: SQLite (`sqlite:///PATH`, the default `$FORKLIFT_HOME/forklift.db`) and
PostgreSQL through psycopg 3 (`postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE`; `postgres://` and
`postgresql+psycopg://` mean the same). `engine_url` turns the URL as written into the one SQLAlchemy
connects with; everything a user reads shows the URL as written, its password masked (`shown`).
Another driver or database is refused before anything connects, in words that say what to write.

A password must never reach a message, a log line or a traceback file: SQLAlchemy's own error for a
URL it cannot parse quotes the whole string, so that error is replaced here, and a failed connection
(`unavailable`) is reported with the masked URL and the driver's first line, which names the host and
port but never the password.
"""

from __future__ import annotations

import os
import socket

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from forklift.errors import ForkliftError

SETTING = "FORKLIFT_DATABASE_URL"
SUPPORTED = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"
POSTGRES_DRIVER = "postgresql+psycopg"
_POSTGRES_NAMES = frozenset({"postgresql", "postgres", POSTGRES_DRIVER})
_SQLITE_NAMES = frozenset({"sqlite", "sqlite+pysqlite"})
# libpq waits for TCP's own timeout (minutes) on a host that does not answer; a server's start should not.
CONNECT_TIMEOUT_SECONDS = 10


class DatabaseUrlError(ForkliftError, ValueError):
    """The database URL names no database forklift supports; the message says what to write."""


class DatabaseUnavailable(ForkliftError, ConnectionError):
    """The database could not be reached or refused the connection (host, port, user, password)."""


def _parse(url: str | URL, setting: str) -> URL:
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        # SQLAlchemy's message repeats the whole string, password included.
        raise DatabaseUrlError(f"{setting} is not a database URL: write {SUPPORTED} (quote a password's "
                               "special characters: '@' as %40, ':' as %3A, '/' as %2F)") from None


def shown(url: str | URL) -> str:
    """The URL as the user wrote it, with its password masked."""
    try:
        return _parse(url, SETTING).render_as_string(hide_password=True)
    except DatabaseUrlError:
        return "(a URL that cannot be read)"


def backend(url: str | URL) -> str:
    """`sqlite` or `postgresql` (after `engine_url` has accepted the URL)."""
    return "postgresql" if _parse(url, SETTING).drivername in _POSTGRES_NAMES else "sqlite"


def engine_url(url: str | URL, *, setting: str = SETTING) -> URL:
    """The URL SQLAlchemy connects with: psycopg 3 for PostgreSQL. DatabaseUrlError for anything else;
    `setting` names where the URL came from in that message."""
    parsed = _parse(url, setting)
    name = parsed.drivername
    if name in _SQLITE_NAMES:
        return parsed
    if name in _POSTGRES_NAMES:
        if not parsed.database:
            raise DatabaseUrlError(f"{setting}={shown(parsed)} names no database: write {SUPPORTED}")
        return parsed.set(drivername=POSTGRES_DRIVER)
    engine, _, driver = name.partition("+")
    if engine in ("postgresql", "postgres"):
        raise DatabaseUrlError(
            f"{setting}={shown(parsed)} names the driver {driver}, and forklift connects to PostgreSQL with "
            f"psycopg 3: write postgresql://… (or {POSTGRES_DRIVER}://…) with the rest of the URL as it is")
    if engine == "sqlite":
        raise DatabaseUrlError(f"{setting}={shown(parsed)} names the driver {driver}: write sqlite:///PATH")
    raise DatabaseUrlError(f"{setting}={shown(parsed)}: forklift keeps its state in SQLite or PostgreSQL, "
                           f"not {engine}; write {SUPPORTED}")


def connect_args(url: URL, application: str | None = None) -> dict[str, object]:
    """The driver's connection options for `url` (an `engine_url`): for PostgreSQL a connect timeout and
    the name `pg_stat_activity` shows, unless the URL's query sets them; nothing for SQLite."""
    if url.drivername != POSTGRES_DRIVER:
        return {}
    options: dict[str, object] = {}
    if "connect_timeout" not in url.query:
        options["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if "application_name" not in url.query:
        options["application_name"] = application or f"forklift pid {os.getpid()} on {socket.gethostname()}"
    return options


def unavailable(url: str | URL, exc: DBAPIError) -> DatabaseUnavailable:
    """A one-line error for a connection that failed, naming the database without its password."""
    original = exc.orig if exc.orig is not None else exc
    # psycopg's first line names the host and port and why ("Connection refused", "password
    # authentication failed for user ..."); the rest (SQLAlchemy's background link) says nothing more.
    first = next((line for line in str(original).splitlines() if line.strip()), type(original).__name__)
    reason = " ".join(first.split())
    password = _parse(url, SETTING).password
    if password and len(str(password)) >= 4:  # a driver that quoted its conninfo back: mask it all the same
        reason = reason.replace(str(password), "***")
    return DatabaseUnavailable(f"cannot connect to the database {shown(url)} ({SETTING}): {reason}")
