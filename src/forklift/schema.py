"""Every table forklift keeps, on one metadata (`forklift.db.Base.metadata`).

Each table is declared by the module that uses it, and is on the metadata once that module is
imported; `metadata()` imports them all. It is what the migrations are checked against
(`tests/test_migrations.py`) and what autogenerate compares with when a migration is written
(pass it as `config.attributes["target_metadata"]`). This module sits above every model module:
nothing below it imports it.
"""

from __future__ import annotations

from importlib import import_module

from sqlalchemy import MetaData

MODEL_MODULES = (
    "forklift.credentials.models",
    "forklift.experiments.records",
    "forklift.images.records",
    "forklift.control.models",
    "forklift.control.tagrows",
    "forklift.control.metricrows",
    "forklift.control.inference.models",
)


def metadata() -> MetaData:
    from forklift.db import Base

    for module in MODEL_MODULES:
        import_module(module)
    return Base.metadata
