"""Tags on SageMaker resources (AddTags, ListTags, DeleteTags, and the Tags of a Create call) and the
metric data points CloudWatch's GetMetricStatistics and GetMetricData read (training jobs' metric
definitions, endpoints' invocation metrics).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_tags",
        sa.Column("resource_arn", sa.String(256), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
    )
    op.create_table(
        "metric_points",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("metric_name", sa.String(255), nullable=False),
        sa.Column("dimensions", sa.String(1024), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("sample_count", sa.Float(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=False),
        sa.Column("maximum", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=True),
    )
    op.create_index("ix_metric_points_series", "metric_points",
                    ["namespace", "metric_name", "dimensions", "timestamp"])
