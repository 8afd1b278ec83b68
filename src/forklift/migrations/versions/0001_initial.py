"""The schema forklift 0.1.0 created with create_all: credentials, experiments, images, jobs, inference.

Revision ID: 0001
Revises: (none)

Adopting a database made before migrations (see `forklift.migrations`): the tables it holds, checked
to be these, are listed in `config.attributes["forklift.adopt"]` and kept, with their indexes; the
others are created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    keep = context.config.attributes.get("forklift.adopt", frozenset())

    def create(name: str, *elements: sa.Column | sa.Constraint, indexes: tuple[str, ...] = ()) -> None:
        if name in keep:
            return
        op.create_table(name, *elements)
        for column in indexes:
            op.create_index(f"ix_{name}_{column}", name, [column])

    # credentials (forklift.credentials.models)
    create(
        "secrets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("registry", sa.String(255), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    create(
        "secret_owners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_id", "owner"),
        sa.ForeignKeyConstraint(["secret_id"], ["secrets.id"], ondelete="CASCADE"),
        indexes=("owner", "secret_id"),
    )
    create(
        "credential_functions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("handler", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(1024), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=False),
        sa.Column("code_secret_id", sa.String(32), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    create(
        "iam_roles",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("managed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    # experiments (forklift.experiments.records)
    create(
        "experiments",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("container", sa.String(1024), nullable=False),
        sa.Column("image", sa.String(1024), nullable=False),
        sa.Column("command", sa.Text(), nullable=True),
        sa.Column("workspace", sa.Text(), nullable=True),
        sa.Column("workspace_uri", sa.Text(), nullable=True),
        sa.Column("machine_type", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(64), nullable=False),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("max_runtime", sa.Integer(), nullable=False),
        sa.Column("secret_id", sa.String(32), nullable=True),
        sa.Column("cloned_from", sa.String(63), nullable=True),
        sa.Column("job_name", sa.String(63), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    # images (forklift.images.records)
    create(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(512), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("index_digest", sa.String(80), nullable=True),
        sa.Column("media_type", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
        indexes=("digest",),
    )
    create(
        "blob_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("registry", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest", "registry", "repository"),
        indexes=("digest",),
    )

    # training jobs (forklift.control.models)
    create(
        "training_jobs",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("arn", sa.String(255), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("secondary_status", sa.String(32), nullable=False),
        sa.Column("transitions", sa.JSON(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("modified_at", sa.Float(), nullable=False),
        sa.Column("training_start", sa.Float(), nullable=True),
        sa.Column("training_end", sa.Float(), nullable=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("resolved_image", sa.String(512), nullable=True),
        sa.Column("container_name", sa.String(100), nullable=True),
        sa.Column("exit_status", sa.JSON(), nullable=True),
        sa.Column("model_artifacts", sa.String(1024), nullable=True),
        sa.Column("log_stream", sa.String(512), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        indexes=("created_at", "modified_at", "phase", "status"),
    )

    # inference (forklift.control.inference.models)
    create(
        "inference_models",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("arn", sa.String(255), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("resolved_image", sa.String(512), nullable=False),
        sa.Column("resolution_time", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        indexes=("created_at",),
    )
    create(
        "inference_endpoint_configs",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("arn", sa.String(255), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        indexes=("created_at",),
    )
    create(
        "inference_endpoints",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("arn", sa.String(255), nullable=False),
        sa.Column("config_name", sa.String(63), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("modified_at", sa.Float(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("pending_config", sa.String(63), nullable=True),
        sa.Column("pending_variants", sa.JSON(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        indexes=("created_at", "modified_at", "status"),
    )
    create(
        "inference_endpoint_instances",
        sa.Column("container_name", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(63), nullable=False),
        sa.Column("variant", sa.String(63), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("container_name"),
        indexes=("endpoint",),
    )


def downgrade() -> None:
    for name in ("inference_endpoint_instances", "inference_endpoints", "inference_endpoint_configs",
                 "inference_models", "training_jobs", "blob_sources", "images", "experiments", "iam_roles",
                 "credential_functions", "secret_owners", "secrets"):
        op.drop_table(name)
