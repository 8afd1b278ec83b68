"""Columns as wide as what they hold, which PostgreSQL enforces (SQLite does not): an image's size past
2 GiB, sha512 digests, a model artifact's URI below a 1024-character S3OutputPath, a function file's path.

Revision ID: 0004
Revises: 0003

On PostgreSQL each change is an ALTER COLUMN ... TYPE (widening: every stored value fits); on SQLite
the four tables are copied and renamed (batch mode), with their rows, keys and indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DIGEST = sa.String(135)  # sha512:<128 hex>, the longest digest forklift.reference accepts

# (table, column, old type, new type, nullable)
CHANGES = (
    ("images", "size", sa.Integer(), sa.BigInteger(), False),
    ("images", "digest", sa.String(80), DIGEST, False),
    ("images", "index_digest", sa.String(80), DIGEST, True),
    ("blob_sources", "digest", sa.String(80), DIGEST, False),
    ("training_jobs", "model_artifacts", sa.String(1024), sa.Text(), True),
    ("credential_functions", "origin", sa.String(1024), sa.Text(), False),
)


def upgrade() -> None:
    for table in dict.fromkeys(change[0] for change in CHANGES):
        with op.batch_alter_table(table) as batch:
            for name, column, old, new, nullable in CHANGES:
                if name == table:
                    batch.alter_column(column, existing_type=old, type_=new, existing_nullable=nullable)
