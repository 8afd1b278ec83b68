"""Who created a job, model or endpoint, for the `show` commands' "Created by" line.

SageMaker's Describe responses have no member for it (botocore's model has none, so the API adds
none); the owner is read from this FORKLIFT_HOME's database instead (`forklift.quickread`), matched
by ARN, so a server on another home or database shows "-" rather than another resource's owner.
"""

from __future__ import annotations

from forklift import quickread
from forklift.config import load_settings

TABLES = {"training-job": "training_jobs", "model": "inference_models", "endpoint-config": "inference_endpoint_configs",
          "endpoint": "inference_endpoints"}
COLUMNS = ("arn", "created_by")


def created_by(kind: str, arn: str) -> str:
    """The principal that created the `kind` resource `arn`, or "-" when this home does not know it."""
    rows = quickread.select(load_settings(), TABLES[kind], COLUMNS, order_by="arn")
    return next((row["created_by"] for row in rows or () if row["arn"] == arn and row["created_by"]), "-")
