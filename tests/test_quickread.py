"""The listings read without the ORM name the ORM's own tables and columns, and read what it wrote."""

from __future__ import annotations

import time

from forklift import quickread
from forklift.cli.experiments import EXPERIMENT_COLUMNS
from forklift.cli.images import IMAGE_COLUMNS
from forklift.config import Settings
from forklift.credentials.functioninfo import COLUMNS as FUNCTION_COLUMNS


def test_columns_are_the_orms():
    from forklift.credentials.models import FunctionRow  # noqa: F401  (registers its table)
    from forklift.db import Base
    from forklift.experiments.records import ExperimentRow  # noqa: F401
    from forklift.images.records import ImageRow  # noqa: F401

    tables = Base.metadata.tables
    assert set(FUNCTION_COLUMNS) <= set(tables["credential_functions"].columns.keys())
    assert set(IMAGE_COLUMNS) <= set(tables["images"].columns.keys())
    assert set(EXPERIMENT_COLUMNS) == set(tables["experiments"].columns.keys())


def test_reads_what_the_orm_wrote_and_falls_back_elsewhere(tmp_path, monkeypatch):
    from forklift.images.imagestore import ImageStore
    from forklift.images.records import ImageRecord

    monkeypatch.delenv("FORKLIFT_DATABASE_URL", raising=False)
    settings = Settings(home=tmp_path)
    assert quickread.select(settings, "images", IMAGE_COLUMNS, order_by="reference") == []  # no database yet
    store = ImageStore(settings)
    for name in ("b", "a"):
        store.records.put(ImageRecord(f"localhost:5000/{name}:1", "sha256:" + "0" * 64, None, "m", "linux/amd64", 7,
                                      time.time()))
    rows = quickread.select(settings, "images", IMAGE_COLUMNS, order_by="reference")
    assert [r["reference"] for r in rows] == ["localhost:5000/a:1", "localhost:5000/b:1"]
    assert rows[0]["size"] == 7 and rows[0]["platform"] == "linux/amd64"
    assert quickread.select(settings, "no_such_table", ("x",), order_by="x") == []
    monkeypatch.setenv("FORKLIFT_DATABASE_URL", "postgresql://db.invalid/forklift")
    assert quickread.select(Settings(home=tmp_path), "images", IMAGE_COLUMNS, order_by="reference") is None
