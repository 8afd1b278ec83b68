"""Which database URLs forklift accepts, what it connects with, and that a password never shows."""

from __future__ import annotations

import pytest

from forklift import dburl
from forklift.dburl import DatabaseUrlError, engine_url, shown

PASSWORD = "hunter2-not-shown"


@pytest.mark.parametrize("written", [
    f"postgresql://forklift:{PASSWORD}@db.example:5433/forklift",
    f"postgres://forklift:{PASSWORD}@db.example:5433/forklift",
    f"postgresql+psycopg://forklift:{PASSWORD}@db.example:5433/forklift",
])
def test_postgresql_urls_connect_with_psycopg_3_and_show_as_written(written):
    url = engine_url(written)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "forklift", PASSWORD, "db.example", 5433, "forklift")
    assert dburl.backend(written) == "postgresql"
    assert shown(written) == written.replace(PASSWORD, "***")  # the scheme as the user wrote it


def test_sqlite_urls_are_kept():
    assert str(engine_url("sqlite:////var/lib/forklift/forklift.db")) == "sqlite:////var/lib/forklift/forklift.db"
    assert dburl.backend("sqlite://") == "sqlite"


@pytest.mark.parametrize(("written", "says"), [
    (f"postgresql+psycopg2://u:{PASSWORD}@h/db", "names the driver psycopg2, and forklift connects to PostgreSQL "
                                                 "with psycopg 3: write postgresql://"),
    (f"postgresql+asyncpg://u:{PASSWORD}@h/db", "names the driver asyncpg"),
    (f"mysql://u:{PASSWORD}@h/db", "not mysql; write sqlite:///PATH or postgresql://USER:PASSWORD@HOST"),
    ("sqlite+aiosqlite:///x.db", "names the driver aiosqlite: write sqlite:///PATH"),
    (f"postgresql://u:{PASSWORD}@h", "names no database"),
    (f"not a url {PASSWORD}", "is not a database URL"),
    (f"postgresql://u:{PASSWORD}@h:notaport/db", "is not a database URL"),
])
def test_other_urls_are_refused_naming_the_setting_and_the_fix_without_the_password(written, says):
    with pytest.raises(DatabaseUrlError) as refused:
        engine_url(written)
    message = str(refused.value)
    assert message.startswith("FORKLIFT_DATABASE_URL") and says in message, message
    assert PASSWORD not in message


def test_the_option_a_url_came_from_is_named():
    with pytest.raises(DatabaseUrlError, match=r"^--database-url=mysql://u:\*\*\*@h/db"):
        engine_url(f"mysql://u:{PASSWORD}@h/db", setting="--database-url")


def test_postgresql_connections_get_a_timeout_and_a_name_unless_the_url_sets_them():
    options = dburl.connect_args(engine_url("postgresql://u@h/db"))
    assert options["connect_timeout"] == dburl.CONNECT_TIMEOUT_SECONDS
    assert str(options["application_name"]).startswith("forklift pid ")
    assert dburl.connect_args(engine_url("postgresql://u@h/db?connect_timeout=3&application_name=mine")) == {}
    assert dburl.connect_args(engine_url("sqlite:///x.db")) == {}
