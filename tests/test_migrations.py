"""The schema migrations on real SQLite files: a database forklift 0.1.0 made is upgraded with every row
kept, a fresh one gets exactly the models' schema, a newer one is refused untouched, concurrent first
opens agree, and a later migration runs from the stamped revision."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.db import make_old_db as made
from forklift import migrations

FORKLIFT = [sys.executable, "-m", "forklift"]
FIXTURE = Path(__file__).parent / "fixtures" / "db"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FORKLIFT_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    return home


def old_home(home: Path) -> Path:
    """`home` holding the database (and secret key) forklift 0.1.0 left: see fixtures/db/make_old_db.py."""
    shutil.copyfile(FIXTURE / "forklift-0.1.0.sqlite", home / "forklift.db")
    shutil.copyfile(FIXTURE / "forklift-0.1.0.secret.key", home / "secret.key")
    os.chmod(home / "secret.key", 0o600)
    return home


def url_of(home: Path) -> str:
    return f"sqlite:///{home / 'forklift.db'}"


def forklift(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FORKLIFT_DATABASE_URL"}
    return subprocess.run([*FORKLIFT, *args], check=False, capture_output=True, text=True, timeout=timeout,
                          env={**env, "FORKLIFT_HOME": str(home)})


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def ddl(path: Path) -> set[tuple[str, str]]:
    """Every table's and index's CREATE statement as SQLite keeps it, but Alembic's own table's."""
    with sqlite3.connect(path) as db:
        return set(db.execute("SELECT name, sql FROM sqlite_master "
                              "WHERE sql IS NOT NULL AND name != 'alembic_version'"))


def schema_diff(url: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from forklift.schema import metadata

    engine = create_engine(url)
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
    assert migrations.INITIAL_TABLES | {"access_keys"} == set(metadata().tables)


def test_a_database_made_by_forklift_0_1_0_is_upgraded_and_every_row_is_found(home):
    old_home(home)
    before = counts(home / "forklift.db")
    assert "alembic_version" not in before and all(before.values()), before  # rows in every table

    current = forklift(home, "db", "current")
    assert current.returncode == 0 and "made before schema migrations" in current.stdout, current
    upgraded = forklift(home, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "stamped at revision 0001" in upgraded.stdout
    assert forklift(home, "db", "current").stdout.strip() == f"{migrations.head()} (head)"
    again = forklift(home, "db", "upgrade")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    after = counts(home / "forklift.db")
    assert after.pop("alembic_version") == 1 and after.pop("access_keys") == 0 and after == before
    assert schema_diff(url_of(home)) == []

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

    settings = Settings(home=home)
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

    listing = forklift(home, "images", "ls")  # the listings that read the file without the ORM
    assert listing.returncode == 0 and all(r.split("/", 1)[1].split(":")[0] in listing.stdout for r in made.IMAGES)


def test_a_partial_0_1_0_database_gets_its_missing_tables(home):
    """0.1.0 made each table when its module was first imported: `forklift images pull` alone left two."""
    old_home(home)
    with sqlite3.connect(home / "forklift.db") as db:
        for table in migrations.INITIAL_TABLES - {"images", "blob_sources"}:
            db.execute(f'DROP TABLE "{table}"')
    done = migrations.upgrade(url_of(home))
    assert done.adopted and done.after == migrations.head()
    assert counts(home / "forklift.db")["images"] == len(made.IMAGES)
    assert schema_diff(url_of(home)) == []


def test_a_pre_migration_table_that_differs_is_refused_and_left_alone(home):
    old_home(home)
    with sqlite3.connect(home / "forklift.db") as db:
        db.execute("ALTER TABLE images ADD COLUMN extra INTEGER")
    before = counts(home / "forklift.db")
    result = forklift(home, "db", "upgrade")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'images' is not the one forklift 0.1.0 made" in result.stderr and "extra" in result.stderr
    assert counts(home / "forklift.db") == before  # no alembic_version, no new table


def test_a_fresh_database_is_exactly_the_models_and_0_1_0s_schema(home):
    from forklift.db import engine_for

    engine_for(url_of(home))
    assert schema_diff(url_of(home)) == []
    # The same CREATE statements, byte for byte, as the tables create_all made in 0.1.0 (and the
    # tables of later revisions).
    # Columns that revision 0003 adds: SQLite appends them to the CREATE statement.
    later_columns = ", created_by VARCHAR(256)"
    fresh = {(name, sql.replace(later_columns, "")) for name, sql in ddl(home / "forklift.db")
             if name != "access_keys"}
    assert fresh == ddl(FIXTURE / "forklift-0.1.0.sqlite")
    with sqlite3.connect(home / "forklift.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.head(),)]


def test_a_database_from_a_newer_forklift_is_refused_untouched(home):
    assert forklift(home, "roles", "put", "keep", "--managed-policy", "AmazonSageMakerFullAccess").returncode == 0
    with sqlite3.connect(home / "forklift.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    before = counts(home / "forklift.db")
    for args in (("db", "upgrade"), ("roles", "list")):
        result = forklift(home, *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "schema revision 9999" in result.stderr and "does not know" in result.stderr
        assert "forklift db upgrade" in result.stderr
    current = forklift(home, "db", "current")
    assert current.returncode == 0 and current.stdout.startswith("9999 (unknown to forklift")
    with pytest.raises(migrations.SchemaMismatch, match="newer forklift"):
        migrations.upgrade(url_of(home))
    assert counts(home / "forklift.db") == before
    with sqlite3.connect(home / "forklift.db") as db:
        assert db.execute("SELECT name FROM iam_roles").fetchall() == [("keep",)]


def test_processes_opening_one_fresh_file_at_once_all_succeed(home):
    url = url_of(home)
    start = time.time() + 2  # after every interpreter has imported forklift
    script = ("import sys, time\n"
              "from forklift.config import Settings\n"
              "from forklift.credentials.roles import RoleStore\n"
              "from forklift.db import engine_for\n"
              f"time.sleep(max(0, {start} - time.time()))\n"
              "engine_for(sys.argv[1])\n"
              "RoleStore(Settings(home=__import__('pathlib').Path(sys.argv[2]))).put("
              "f'r{sys.argv[3]}', managed=['AmazonSageMakerFullAccess'])\n")
    env = {k: v for k, v in os.environ.items() if k != "FORKLIFT_DATABASE_URL"}
    processes = [subprocess.Popen([sys.executable, "-c", script, url, str(home), str(i)], env=env,
                                  stderr=subprocess.PIPE, text=True) for i in range(6)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in processes]
    assert all(rc == 0 for rc, _ in results), results
    with sqlite3.connect(home / "forklift.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.head(),)]
        assert db.execute("SELECT count(*) FROM iam_roles").fetchone() == (6,)


def test_a_current_database_opens_without_importing_alembic(home):
    from forklift.db import engine_for

    engine_for(url_of(home))
    script = ("import sys\nfrom forklift.db import engine_for\nengine_for(sys.argv[1])\n"
              "print('alembic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script, url_of(home)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


LATER = '''"""A later revision, for the test only: a column on two tables, one of them referenced by a foreign key.

Revision ID: {later}
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

revision = "{later}"
down_revision = "{head}"


def upgrade():
    with op.batch_alter_table("secrets", recreate="always") as batch:  # SQLite: copy, drop, rename
        batch.add_column(sa.Column("note", sa.String(64), nullable=True))
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=True))
'''


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


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]


def test_a_later_migration_runs_from_the_stamped_revision(home, tmp_path, monkeypatch):
    old_home(home)
    assert migrations.upgrade(url_of(home)).after == HEAD  # as today's code leaves it
    before = counts(home / "forklift.db")
    install_later_migration(tmp_path, monkeypatch)
    done = migrations.upgrade(url_of(home))
    assert (done.before, done.after, done.adopted) == (HEAD, LATER_REVISION, False)
    assert "note" in columns(home / "forklift.db", "secrets") and "labels" in columns(home / "forklift.db", "images")
    # Every row kept, secret_owners' too: copying `secrets` in batch mode did not cascade-delete them.
    assert counts(home / "forklift.db") == before
    assert migrations.status(url_of(home)).revision == LATER_REVISION


def test_a_0_1_0_database_goes_straight_to_a_later_revision(home, tmp_path, monkeypatch):
    old_home(home)
    install_later_migration(tmp_path, monkeypatch)
    before = counts(home / "forklift.db")
    done = migrations.upgrade(url_of(home))
    assert (done.before, done.after, done.adopted) == (None, LATER_REVISION, True)
    assert "note" in columns(home / "forklift.db", "secrets")
    after = counts(home / "forklift.db")
    assert after.pop("alembic_version") == 1 and after.pop("access_keys") == 0 and after == before


def test_serve_upgrades_the_database_at_start_and_says_so(home):
    old_home(home)
    env = {k: v for k, v in os.environ.items() if k not in ("FORKLIFT_DATABASE_URL", "FORKLIFT_URL")}
    server = subprocess.Popen([*FORKLIFT, "serve", "--port", "0"], env={**env, "FORKLIFT_HOME": str(home)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            if (home / "server.json").exists() or server.poll() is not None:
                break
            time.sleep(0.05)
        assert json.loads((home / "server.json").read_text())["url"]
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert sum("stamped at revision 0001" in line for line in err.splitlines()) == 1, err
    assert migrations.status(url_of(home)).revision == migrations.head()


def test_db_history_marks_the_head_and_the_databases_revision(home):
    assert forklift(home, "db", "current").stdout.startswith("none: no database")
    assert not (home / "forklift.db").exists()  # looking does not create it
    assert forklift(home, "db", "upgrade").returncode == 0
    lines = forklift(home, "db", "history").stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(migrations.REVISIONS)
    assert not lines[0].endswith(")")
    assert lines[-1].startswith(f"{HEAD}  ") and lines[-1].endswith("(head, current)")
