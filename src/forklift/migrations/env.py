"""Alembic's entry point for forklift's migrations; run by `forklift.migrations`, which passes the
connection to migrate (in its transaction) as `config.attributes["connection"]`.

Without one (offline `--sql` mode, or a caller that gave only `sqlalchemy.url`) it makes its own.
`target_metadata` (for autogenerate and comparisons) comes in `config.attributes` too: the models
are above this package (`forklift.schema`), so it does not import them.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import make_url

from forklift.migrations import migration_engine

config = context.config
# Batch operations are plain ALTER TABLE on PostgreSQL and copy-and-move on SQLite (which cannot alter
# most of a table): rendering every change as one lets the same script serve both.
options = {"target_metadata": config.attributes.get("target_metadata"), "render_as_batch": True}


def run(connection) -> None:
    # transactional_ddl: forklift's migration connections put DDL inside their transaction on SQLite too
    # (BEGIN IMMEDIATE, see migration_engine), so the whole upgrade commits or rolls back as one.
    context.configure(connection=connection, transactional_ddl=True, **options)
    with context.begin_transaction():  # nothing when the caller's transaction is open already
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    engine = migration_engine(make_url(config.get_main_option("sqlalchemy.url")))
    try:
        with engine.connect() as connection:
            run(connection)
    finally:
        engine.dispose()
