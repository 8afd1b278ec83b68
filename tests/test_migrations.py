"""The schema migrations on real databases, SQLite files and a real PostgreSQL server: a database forklift
0.1.0 made is upgraded with every row kept, a fresh one gets exactly the models' schema, a newer one is
refused untouched, concurrent first opens agree, and a later migration runs from the stamped revision.

Each test runs on both engines. The 0.1.0 database on PostgreSQL is the SQLite fixture's rows in the
tables revision 0001 makes there (what 0.1.0's create_all made: the same statements); what is about the
SQLite file itself (its CREATE statements byte for byte, WAL) is SQLite's alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, inspect, select, text
from sqlalchemy.pool import NullPool

from fixtures.db import make_old_db as made
from fixtures.postgres import ENGINES
from forklift import migrations
from forklift.dburl import engine_url

FORKLIFT = [sys.executable, "-m", "forklift"]
FIXTURE = Path(__file__).parent / "fixtures" / "db"


@dataclass(frozen=True)
class Db:
    """The database a test migrates: `url` as a user writes it; `home` the FORKLIFT_HOME beside it."""

    engine: str
    url: str
    home: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("FORKLIFT_DATABASE_URL", "FORKLIFT_URL")}
        env["FORKLIFT_HOME"] = str(self.home)
        if self.engine == "postgresql":
            env["FORKLIFT_DATABASE_URL"] = self.url
        return env

    def execute(self, *statements: str) -> None:
        engine = create_engine(engine_url(self.url), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()

    def rows(self, statement: str) -> list[tuple]:
        engine = create_engine(engine_url(self.url), poolclass=NullPool)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(statement))]
        finally:
            engine.dispose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FORKLIFT_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture(params=ENGINES)
def db(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> Db:
    if request.param == "sqlite":
        return Db("sqlite", f"sqlite:///{home / 'forklift.db'}", home)
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("FORKLIFT_DATABASE_URL", url)  # what Settings(home=...).database_url reads
    return Db("postgresql", url, home)


def old_home(db: Db) -> Db:
    """`db` holding the database (and secret key) forklift 0.1.0 left: see fixtures/db/make_old_db.py."""
    shutil.copyfile(FIXTURE / "forklift-0.1.0.secret.key", db.home / "secret.key")
    os.chmod(db.home / "secret.key", 0o600)
    if db.engine == "sqlite":
        shutil.copyfile(FIXTURE / "forklift-0.1.0.sqlite", db.home / "forklift.db")
        return db
    target = create_engine(engine_url(db.url), poolclass=NullPool)
    source = create_engine(f"sqlite:///{FIXTURE / 'forklift-0.1.0.sqlite'}", poolclass=NullPool)
    try:
        with target.begin() as connection, source.connect() as old:
            migrations._upgrade_to(connection, migrations.INITIAL)  # 0.1.0's tables, as create_all made them
            connection.execute(text(f"DROP TABLE {migrations.VERSION_TABLE}"))
            tables = MetaData()
            tables.reflect(connection)
            for table in tables.sorted_tables:
                rows = [dict(row._mapping) for row in old.execute(select(*table.columns))]
                if rows:
                    connection.execute(table.insert(), rows)
                if "id" in table.columns and table.columns["id"].type.python_type is int:
                    # where 0.1.0's own inserts would have left the id sequence
                    connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                            f"(SELECT max(id) FROM {table.name}))"))
    finally:
        target.dispose()
        source.dispose()
    return db


def forklift(db: Db, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*FORKLIFT, *args], check=False, capture_output=True, text=True, timeout=timeout,
                          env=db.env())


def counts(db: Db) -> dict[str, int]:
    engine = create_engine(engine_url(db.url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {t: connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                    for t in inspect(connection).get_table_names()}
    finally:
        engine.dispose()


def columns(db: Db, table: str) -> list[str]:
    engine = create_engine(engine_url(db.url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [column["name"] for column in inspect(connection).get_columns(table)]
    finally:
        engine.dispose()


def ddl(path: Path) -> set[tuple[str, str]]:
    """Every table's and index's CREATE statement as SQLite keeps it, but Alembic's own table's."""
    import sqlite3

    with sqlite3.connect(path) as db:
        return set(db.execute("SELECT name, sql FROM sqlite_master "
                              "WHERE sql IS NOT NULL AND name != 'alembic_version'"))


def schema_diff(url: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from forklift.schema import metadata

    engine = create_engine(engine_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), metadata())
    finally:
        engine.dispose()


def test_revisions_and_initial_tables_are_the_scripts():
    assert [revision for revision, _ in migrations.history()] == list(migrations.REVISIONS)
    assert migrations.REVISIONS[0] == migrations.INITIAL
    from forklift.schema import metadata

    # 0001 creates every table 0.1.0 had; later revisions add the rest
    assert migrations.INITIAL_TABLES | {"access_keys", "resource_tags", "metric_points"} == set(metadata().tables)


def test_a_database_made_by_forklift_0_1_0_is_upgraded_and_every_row_is_found(db):
    old_home(db)
    before = counts(db)
    assert "alembic_version" not in before and all(before.values()), before  # rows in every table

    current = forklift(db, "db", "current")
    assert current.returncode == 0 and "made before schema migrations" in current.stdout, current
    upgraded = forklift(db, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "stamped at revision 0001" in upgraded.stdout
    assert forklift(db, "db", "current").stdout.strip() == f"{migrations.head()} (head)"
    again = forklift(db, "db", "upgrade")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    after = counts(db)
    added_later = {"resource_tags": 0, "metric_points": 0}  # tables of later revisions, empty
    assert after.pop("alembic_version") == 1 and after.pop("access_keys") == 0 and after == before | added_later
    assert schema_diff(db.url) == []

    from forklift.config import Settings
    from forklift.control.inference.models import EndpointConfigRow, EndpointRow, ModelRow
    from forklift.control.inference.store import InferenceStore
    from forklift.control.store import JobStore
    from forklift.credentials import Credentials
    from forklift.credentials.functions import FunctionRegistry
    from forklift.credentials.roles import RoleStore
    from forklift.credentials.secrets import SecretStore
    from forklift.experiments.records import ExperimentStore
    from forklift.images.imagestore import ImageStore

    settings = Settings(home=db.home)
    assert settings.database_url == db.url
    experiments = {e.name: e for e in ExperimentStore(settings).list()}
    assert set(experiments) == set(made.EXPERIMENTS)
    original = experiments[made.EXPERIMENTS[0]]
    assert original.env == {"SEED": "1"} and original.inputs == {"training": "s3://data/mnist/"}
    assert original.job_name == made.JOB and experiments[made.EXPERIMENTS[1]].cloned_from == original.name
    secrets = SecretStore(settings)
    assert secrets.get(original.secret_id) == Credentials(*made.CREDENTIALS)  # decrypts with 0.1.0's key
    assert secrets.owners(original.secret_id) == sorted(made.SECRET_OWNERS)
    assert secrets.registry_of(original.secret_id) == made.REGISTRY

    functions = FunctionRegistry(settings)
    function = functions.get(made.FUNCTION)
    assert function.runtime == "exec" and function.origin == made.FUNCTION_COMMAND[0]
    assert functions.invoke(made.FUNCTION, {}).response == {"username": "bob", "password": "pw"}
    role = RoleStore(settings).get(made.ROLE)
    assert role.managed == made.ROLE_MANAGED and role.policy["Statement"][0]["Action"] == "lambda:InvokeFunction"

    images = ImageStore(settings).records
    assert sorted(r.reference for r in images.all()) == sorted(made.IMAGES)
    assert images.get(made.IMAGES[1]).size == 1001
    assert images.blob_sources(made.DIGEST, made.REGISTRY) == ["team/train"]
    images.add_blob_source(made.DIGEST, made.REGISTRY, "team/serve")  # a new row after the old ones' ids
    assert sorted(images.blob_sources(made.DIGEST, made.REGISTRY)) == ["team/serve", "team/train"]

    job = JobStore(settings.database_url).get(made.JOB)
    assert job.status == "Completed" and job.phase == "done" and job.exit_status == {"code": 0}
    assert [t["Status"] for t in job.transitions] == ["Starting", "Completed"] and job.seq == 1
    inference = InferenceStore(settings.database_url)
    assert inference.get(ModelRow, made.MODEL).resolved_image.endswith(made.DIGEST)
    assert inference.get(EndpointConfigRow, made.CONFIG).request == {"EndpointConfigName": made.CONFIG}
    endpoint = inference.get(EndpointRow, made.ENDPOINT)
    assert endpoint.status == "InService" and endpoint.variants[0]["VariantName"] == "AllTraffic"
    (instance,) = inference.instances(made.ENDPOINT)
    assert instance.container_name == made.INSTANCE and instance.address == "10.88.0.2:8080"

    listing = forklift(db, "images", "ls")  # SQLite: read without the ORM; PostgreSQL: through it
    assert listing.returncode == 0 and all(r.split("/", 1)[1].split(":")[0] in listing.stdout for r in made.IMAGES)


def test_a_partial_0_1_0_database_gets_its_missing_tables(db):
    """0.1.0 made each table when its module was first imported: `forklift images pull` alone left two."""
    old_home(db)
    dropped = sorted(migrations.INITIAL_TABLES - {"images", "blob_sources"}, key=lambda t: t != "secret_owners")
    db.execute(*(f'DROP TABLE "{table}"' for table in dropped))  # secret_owners first: its key names secrets
    done = migrations.upgrade(db.url)
    assert done.adopted and done.after == migrations.head()
    assert counts(db)["images"] == len(made.IMAGES)
    assert schema_diff(db.url) == []


def test_a_pre_migration_table_that_differs_is_refused_and_left_alone(db):
    old_home(db)
    db.execute("ALTER TABLE images ADD COLUMN extra INTEGER")
    before = counts(db)
    result = forklift(db, "db", "upgrade")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'images' is not the one forklift 0.1.0 made" in result.stderr and "extra" in result.stderr
    assert counts(db) == before  # no alembic_version, no new table


def test_a_fresh_database_is_exactly_the_models_schema(db):
    from forklift.db import engine_for

    engine_for(db.url)
    assert schema_diff(db.url) == []
    assert db.rows("SELECT version_num FROM alembic_version") == [(migrations.head(),)]


# What revision 0004 widens, as SQLite spells the columns; it copies those tables (batch mode), which
# rewrites their CREATE statements: the name quoted, 0003's column among the others.
WIDENED = {
    "images": [("\tdigest VARCHAR(80)", "\tdigest VARCHAR(135)"),
               ("\tindex_digest VARCHAR(80)", "\tindex_digest VARCHAR(135)"), ("\tsize INTEGER", "\tsize BIGINT")],
    "blob_sources": [("\tdigest VARCHAR(80)", "\tdigest VARCHAR(135)")],
    "training_jobs": [("\tmodel_artifacts VARCHAR(1024)", "\tmodel_artifacts TEXT"),
                      ("\tseq INTEGER NOT NULL, \n", "\tseq INTEGER NOT NULL, \n\tcreated_by VARCHAR(256), \n")],
    "credential_functions": [("\torigin VARCHAR(1024)", "\torigin TEXT")],
}


def test_a_fresh_sqlite_file_holds_0_1_0s_create_statements(home):
    from forklift.db import engine_for

    url = f"sqlite:///{home / 'forklift.db'}"
    engine_for(url)
    # The same CREATE statements, byte for byte, as the tables create_all made in 0.1.0 (and the
    # tables of later revisions).
    later_columns = ", created_by VARCHAR(256)"  # the column revision 0003 adds: SQLite appends it
    fresh = {(name, sql.replace(later_columns, "")) for name, sql in ddl(home / "forklift.db")
             if name not in ("access_keys", "resource_tags", "metric_points", "ix_metric_points_series")}
    expected = set()
    for name, sql in ddl(FIXTURE / "forklift-0.1.0.sqlite"):
        if name in WIDENED:
            sql = sql.replace(f"CREATE TABLE {name} (", f'CREATE TABLE "{name}" (')
            for old, new in WIDENED[name]:
                assert old in sql, (name, old)
                sql = sql.replace(old, new)
        expected.add((name, sql))
    assert fresh == expected
    import sqlite3

    with sqlite3.connect(home / "forklift.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_database_from_a_newer_forklift_is_refused_untouched(db):
    assert forklift(db, "roles", "put", "keep", "--managed-policy", "AmazonSageMakerFullAccess").returncode == 0
    db.execute("UPDATE alembic_version SET version_num = '9999'")
    before = counts(db)
    for args in (("db", "upgrade"), ("roles", "list")):
        result = forklift(db, *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "schema revision 9999" in result.stderr and "does not know" in result.stderr
        assert "forklift db upgrade" in result.stderr
    current = forklift(db, "db", "current")
    assert current.returncode == 0 and current.stdout.startswith("9999 (unknown to forklift")
    with pytest.raises(migrations.SchemaMismatch, match="newer forklift"):
        migrations.upgrade(db.url)
    assert counts(db) == before
    assert db.rows("SELECT name FROM iam_roles") == [("keep",)]


def test_processes_opening_one_fresh_database_at_once_all_succeed(db):
    start = time.time() + 2  # after every interpreter has imported forklift
    script = ("import sys, time\n"
              "from forklift.config import Settings\n"
              "from forklift.credentials.roles import RoleStore\n"
              "from forklift.db import engine_for\n"
              f"time.sleep(max(0, {start} - time.time()))\n"
              "engine_for(sys.argv[1])\n"
              "RoleStore(Settings(home=__import__('pathlib').Path(sys.argv[2]))).put("
              "f'r{sys.argv[3]}', managed=['AmazonSageMakerFullAccess'])\n")
    processes = [subprocess.Popen([sys.executable, "-c", script, db.url, str(db.home), str(i)], env=db.env(),
                                  stderr=subprocess.PIPE, text=True) for i in range(6)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in processes]
    assert all(rc == 0 for rc, _ in results), results
    assert db.rows("SELECT version_num FROM alembic_version") == [(migrations.head(),)]
    assert db.rows("SELECT count(*) FROM iam_roles") == [(6,)]


def test_a_current_database_opens_without_importing_alembic(db):
    from forklift.db import engine_for

    engine_for(db.url)
    script = ("import sys\nfrom forklift.db import engine_for\nengine_for(sys.argv[1])\n"
              "print('alembic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script, db.url], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


LATER = """\"\"\"A later revision, for the test only: a column on two tables, one of them referenced by a foreign key.

Revision ID: {later}
Revises: {head}
\"\"\"
import sqlalchemy as sa
from alembic import op

revision = "{later}"
down_revision = "{head}"


def upgrade():
    # SQLite: copy, drop, rename (what must not cascade-delete the rows that reference it);
    # PostgreSQL alters the table in place.
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table("secrets", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(sa.Column("note", sa.String(64), nullable=True))
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=True))
"""


HEAD = migrations.head()
LATER_REVISION = f"{int(HEAD) + 1:04d}"


def install_later_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """forklift.migrations as it would be with one more revision (in a copy: the package keeps its own)."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrations.DIRECTORY, scripts, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    (scripts / "versions" / f"{LATER_REVISION}_later.py").write_text(
        LATER.replace("{later}", LATER_REVISION).replace("{head}", HEAD))
    monkeypatch.setattr(migrations, "DIRECTORY", scripts)
    monkeypatch.setattr(migrations, "REVISIONS", (*migrations.REVISIONS, LATER_REVISION))


def test_a_later_migration_runs_from_the_stamped_revision(db, tmp_path, monkeypatch):
    old_home(db)
    assert migrations.upgrade(db.url).after == HEAD  # as today's code leaves it
    before = counts(db)
    install_later_migration(tmp_path, monkeypatch)
    done = migrations.upgrade(db.url)
    assert (done.before, done.after, done.adopted) == (HEAD, LATER_REVISION, False)
    assert "note" in columns(db, "secrets") and "labels" in columns(db, "images")
    # Every row kept, secret_owners' too: copying `secrets` in batch mode did not cascade-delete them.
    assert counts(db) == before
    assert migrations.status(db.url).revision == LATER_REVISION


def test_a_0_1_0_database_goes_straight_to_a_later_revision(db, tmp_path, monkeypatch):
    old_home(db)
    install_later_migration(tmp_path, monkeypatch)
    before = counts(db)
    done = migrations.upgrade(db.url)
    assert (done.before, done.after, done.adopted) == (None, LATER_REVISION, True)
    assert "note" in columns(db, "secrets")
    after = counts(db)
    added_later = {"resource_tags": 0, "metric_points": 0}  # tables of later revisions, empty
    assert after.pop("alembic_version") == 1 and after.pop("access_keys") == 0 and after == before | added_later


def test_serve_upgrades_the_database_at_start_and_says_so(db):
    old_home(db)
    server = subprocess.Popen([*FORKLIFT, "serve", "--port", "0"], env=db.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            if (db.home / "server.json").exists() or server.poll() is not None:
                break
            time.sleep(0.05)
        assert json.loads((db.home / "server.json").read_text())["url"]
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert sum("stamped at revision 0001" in line for line in err.splitlines()) == 1, err
    assert migrations.status(db.url).revision == migrations.head()


def test_db_history_marks_the_head_and_the_databases_revision(db):
    current = forklift(db, "db", "current").stdout
    if db.engine == "sqlite":
        assert current.startswith("none: no database")
        assert not (db.home / "forklift.db").exists()  # looking does not create it
    else:
        assert current.startswith("none: ") and "holds no forklift schema yet" in current
        assert counts(db) == {}  # looking does not create anything
    assert forklift(db, "db", "upgrade").returncode == 0
    lines = forklift(db, "db", "history").stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(migrations.REVISIONS)
    assert not lines[0].endswith(")")
    assert lines[-1].startswith(f"{HEAD}  ") and lines[-1].endswith("(head, current)")
