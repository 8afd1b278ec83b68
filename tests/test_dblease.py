"""One active `forklift serve` per database, on a real PostgreSQL server and on SQLite files: a second
lease holder (and a second real server) is refused naming the first; the lease ends with its holder,
even a killed one; a lease whose session was cut is taken again, or given up to the server that took it.
And the worst cases of a database URL with a password: an unreachable server or a wrong password stop
`forklift serve` with one line that names the host, never the password."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from fixtures.postgres import PostgresServer, free_port
from forklift import dblease
from forklift.dburl import engine_url

FORKLIFT = [sys.executable, "-m", "forklift"]


def env_for(home: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORKLIFT_DATABASE_URL", "FORKLIFT_URL")}
    env["FORKLIFT_HOME"] = str(home)
    if database_url:
        env["FORKLIFT_DATABASE_URL"] = database_url
    return env


def serve(home: Path, database_url: str | None) -> subprocess.Popen:
    home.mkdir(exist_ok=True)
    return subprocess.Popen([*FORKLIFT, "serve", "--port", "0"], env=env_for(home, database_url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_serving(process: subprocess.Popen, home: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"forklift serve exited {process.returncode}: {process.stderr.read()}")
        try:
            return json.loads((home / "server.json").read_text())["url"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise AssertionError("forklift serve did not start")


def refused(process: subprocess.Popen) -> str:
    """What a server that must not start wrote, once it has exited 1."""
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    return err


def holders(url: str) -> list[tuple[int, str]]:
    """(backend pid, application_name) of each session holding a forklift lease on the database."""
    engine = create_engine(engine_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(
                "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = :high "
                "AND l.objid::bigint = :low AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"),
                {"high": dblease.KEY >> 32, "low": dblease.KEY & 0xFFFFFFFF})]
    finally:
        engine.dispose()


def terminate(url: str, backend: int) -> None:
    engine = create_engine(engine_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}).scalar_one()
    finally:
        engine.dispose()


# -- the lease -------------------------------------------------------------------------------------


def test_a_second_lease_on_one_postgresql_database_is_refused_naming_the_holder(postgres_url, postgres):
    with dblease.acquire(postgres_url, holder="forklift serve pid 4242 on host-a") as first:
        assert holders(postgres_url) == [(first.backend_pid, "forklift serve pid 4242 on host-a")]
        with pytest.raises(dblease.ServerActive) as second:
            dblease.acquire(postgres_url, holder="forklift serve pid 4343 on host-b")
        message = str(second.value)
        assert "forklift serve pid 4242 on host-a" in message and f"backend {first.backend_pid}" in message
        assert "from 127.0.0.1" in message and "FORKLIFT_DATABASE_URL" in message
        assert message.startswith(f"another forklift server is active on the database postgresql://forklift_test:***@"
                                  f"127.0.0.1:{postgres.port}/")
        assert postgres.password not in message
        other = postgres.create_database()  # advisory locks are per database
        try:
            with dblease.acquire(postgres.url(other)):
                pass
        finally:
            postgres.drop_database(other)
    assert holders(postgres_url) == []  # released with the block
    with dblease.acquire(postgres_url, holder="forklift serve pid 4343 on host-b"):
        assert [name for _, name in holders(postgres_url)] == ["forklift serve pid 4343 on host-b"]


def test_a_lease_whose_session_ended_is_taken_again(postgres_url):
    lost: list[str] = []
    # check_seconds: the watcher stays out of the way; the test calls check() itself
    with dblease.acquire(postgres_url, on_lost=lost.append, check_seconds=3600) as lease:
        before = lease.backend_pid
        terminate(postgres_url, before)  # as a restart of the database, or a cut connection, would
        assert lease.check() and lost == []
        assert lease.backend_pid not in (None, before)
        assert [pid for pid, _ in holders(postgres_url)] == [lease.backend_pid]


def test_a_lease_taken_by_another_server_meanwhile_is_given_up(postgres_url):
    lost: list[str] = []
    with dblease.acquire(postgres_url, on_lost=lost.append, check_seconds=3600) as lease:
        terminate(postgres_url, lease.backend_pid)
        with dblease.acquire(postgres_url, holder="forklift serve pid 5151 on host-c"):
            assert not lease.check()
            assert len(lost) == 1 and "forklift serve pid 5151 on host-c" in lost[0]
        assert lease.backend_pid is None


def test_a_second_lease_on_one_sqlite_file_is_refused_naming_the_holder(tmp_path):
    url = f"sqlite:///{tmp_path / 'forklift.db'}"
    with dblease.acquire(url, holder="forklift serve pid 4242 on host-a"):
        with pytest.raises(dblease.ServerActive, match=r"\(forklift serve pid 4242 on host-a\); one server per "):
            dblease.acquire(url)
        with dblease.acquire(f"sqlite:///{tmp_path / 'other.db'}"):
            pass
    with dblease.acquire(url):
        pass
    with dblease.acquire("sqlite://"), dblease.acquire("sqlite://"):  # in memory: a database per connection
        pass


# -- two real servers ------------------------------------------------------------------------------


def test_a_second_server_on_one_postgresql_database_refuses_to_start_until_the_first_is_gone(tmp_path, postgres_url,
                                                                                         postgres):
    first = serve(tmp_path / "home-a", postgres_url)
    try:
        wait_serving(first, tmp_path / "home-a")
        assert [name for _, name in holders(postgres_url)] == [dblease.holder_name(first.pid)[:63]]
        second = serve(tmp_path / "home-b", postgres_url)
        err = refused(second)
        assert f"another forklift server is active on the database postgresql://forklift_test:***@127.0.0.1:" \
               f"{postgres.port}/" in err
        assert f"forklift serve pid {first.pid} on " in err and postgres.password not in err
        assert not (tmp_path / "home-b" / "server.json").exists()
        first.kill()  # no cleanup at all: PostgreSQL ends the session, and the lock with it
        first.wait(30)
        third = serve(tmp_path / "home-b", postgres_url)
        try:
            wait_serving(third, tmp_path / "home-b")
            assert [name for _, name in holders(postgres_url)] == [dblease.holder_name(third.pid)[:63]]
        finally:
            assert "Traceback" not in stop(third)
        assert third.returncode == 0 and holders(postgres_url) == []
    finally:
        stop(first)


def test_two_homes_sharing_one_sqlite_file_get_one_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = serve(tmp_path / "home-a", url)
    try:
        wait_serving(first, tmp_path / "home-a")
        err = refused(serve(tmp_path / "home-b", url))
        assert f"the database {url} (forklift serve pid {first.pid} on " in err
    finally:
        stop(first)


# -- a URL with a password, at its worst -------------------------------------------------------------


def no_password_left(home: Path, password: str, *outputs: str) -> None:
    for output in outputs:
        assert password not in output
    for path in home.rglob("*"):  # logs, cli-errors tracebacks, server.json
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def test_an_unreachable_database_stops_serve_with_one_line_naming_the_host_not_the_password(tmp_path,
                                                                                         secrets_registry):
    password = "unreachable-pw-7f3e"
    secrets_registry.register("a password for a database that is not there", password)
    port = free_port()  # nothing listens there
    process = serve(tmp_path / "home", f"postgresql://forklift:{password}@127.0.0.1:{port}/forklift")
    err = refused(process)
    assert err.startswith(f"Error: cannot connect to the database postgresql://forklift:***@127.0.0.1:{port}/forklift "
                          "(FORKLIFT_DATABASE_URL): ")
    assert f'"127.0.0.1", port {port} failed: Connection refused' in err
    no_password_left(tmp_path / "home", password, err)


def test_a_wrong_password_stops_serve_and_the_cli_with_one_clear_line(tmp_path, postgres: PostgresServer,
                                                                      secrets_registry):
    password = "wrong-pw-but-secret-9c1d"
    secrets_registry.register("a wrong PostgreSQL password", password)
    url = postgres.url("postgres", password=password)
    err = refused(serve(tmp_path / "home", url))
    assert 'password authentication failed for user "forklift_test"' in err
    assert f"postgresql://forklift_test:***@127.0.0.1:{postgres.port}/postgres" in err
    listing = subprocess.run([*FORKLIFT, "roles", "list"], env=env_for(tmp_path / "home", url), capture_output=True,
                             text=True, timeout=60, check=False)
    assert listing.returncode == 1 and "password authentication failed" in listing.stderr
    assert "Traceback" not in listing.stderr and "internal error" not in listing.stderr
    no_password_left(tmp_path / "home", password, err, listing.stdout, listing.stderr)


def test_a_url_naming_another_driver_stops_serve_saying_what_to_write(tmp_path, secrets_registry):
    password = "psycopg2-pw-not-shown"
    secrets_registry.register("a password in a refused URL", password)
    err = refused(serve(tmp_path / "home", f"postgresql+psycopg2://forklift:{password}@db.example/forklift"))
    assert "FORKLIFT_DATABASE_URL=postgresql+psycopg2://forklift:***@db.example/forklift names the driver " \
           "psycopg2" in err and "write postgresql://" in err
    no_password_left(tmp_path / "home", password, err)
