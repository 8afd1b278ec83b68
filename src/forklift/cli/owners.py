"""Who created a job, model or endpoint, for the `show` commands' "Created by" line.

SageMaker's Describe responses have no member for it (botocore's model has none, so the API adds
none); the owner is read from this FORKLIFT_HOME's database instead (`forklift.quickread`, or
SQLAlchemy for a database that is not the home's SQLite file), matched by ARN, so a server on another
home or database shows "-" rather than another resource's owner.
"""

from __future__ import annotations

from forklift import quickread
from forklift.config import load_settings

TABLES = {"training-job": "training_jobs", "model": "inference_models", "endpoint-config": "inference_endpoint_configs",
          "endpoint": "inference_endpoints"}
COLUMNS = ("arn", "created_by")


def created_by(kind: str, arn: str) -> str:
    """The principal that created the `kind` resource `arn`, or "-" when this home does not know it."""
    settings = load_settings()
    rows = quickread.select(settings, TABLES[kind], COLUMNS, order_by="arn")
    if rows is None:  # a database only the ORM reads (PostgreSQL)
        rows = _through_sqlalchemy(settings.database_url, TABLES[kind], arn)
    return next((row["created_by"] for row in rows if row["arn"] == arn and row["created_by"]), "-")


def _through_sqlalchemy(url: str, table: str, arn: str) -> list[dict[str, str | None]]:
    # Imported here: the SQLite path above answers without SQLAlchemy.
    from sqlalchemy import text

    from forklift.db import engine_for

    with engine_for(url).connect() as connection:  # the table is one of TABLES', never user input
        found = connection.execute(text(f"SELECT arn, created_by FROM {table} WHERE arn = :arn"),  # noqa: S608
                                   {"arn": arn})
        return [{"arn": row[0], "created_by": row[1]} for row in found]
