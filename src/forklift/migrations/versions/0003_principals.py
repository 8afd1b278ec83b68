"""Who did what: each access key's policy, and the principal that created each job, model, endpoint
configuration, endpoint and experiment.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OWNED_TABLES = ("training_jobs", "inference_models", "inference_endpoint_configs", "inference_endpoints",
                "experiments")


def upgrade() -> None:
    op.add_column("access_keys", sa.Column("policy", sa.Text(), nullable=True))
    for table in OWNED_TABLES:
        op.add_column(table, sa.Column("created_by", sa.String(256), nullable=True))
