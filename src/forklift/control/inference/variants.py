"""ProductionVariantSummary entries, as DescribeEndpoint reports them (kept on the endpoint row)."""

from __future__ import annotations

import time


def summaries(variants: list[dict], images: dict[str, dict], counts: dict[str, int],
              weights: dict[str, float]) -> list[dict]:
    out = []
    for variant in variants:
        name = variant["VariantName"]
        out.append({
            "VariantName": name,
            "ModelName": variant.get("ModelName"),  # not in the AWS shape; dropped by the API layer
            "DeployedImages": [images[name]] if name in images else [],
            "CurrentWeight": weights.get(name, 1.0), "DesiredWeight": weights.get(name, 1.0),
            "CurrentInstanceCount": counts.get(name, 0), "DesiredInstanceCount": counts.get(name, 0),
            "VariantStatus": [],
        })
    return out


def set_variant_status(variants: list[dict], name: str, status: str | None, message: str = "") -> list[dict]:
    """A copy of `variants` with `name`'s VariantStatus set (None clears it)."""
    entry = [{"Status": status, "StatusMessage": message, "StartTime": time.time()}] if status else []
    return [{**v, "VariantStatus": entry} if v["VariantName"] == name else v for v in variants]


def with_counts(variants: list[dict], counts: dict[str, int], weights: dict[str, float]) -> list[dict]:
    """A copy with current counts and weights (desired ones follow: forklift reaches them or reports why)."""
    return [{**v, "CurrentInstanceCount": counts.get(v["VariantName"], 0),
             "CurrentWeight": weights.get(v["VariantName"], v.get("CurrentWeight", 1.0)),
             "DesiredWeight": weights.get(v["VariantName"], v.get("DesiredWeight", 1.0))} for v in variants]
