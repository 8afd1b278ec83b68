"""The table of metric data points, as CloudWatch keeps them: a series is (namespace, metric name,
dimensions); a row is one point or one period's aggregate (sample count, sum, minimum, maximum)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from forklift.db import Base


class MetricPointRow(Base):
    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_series", "namespace", "metric_name", "dimensions", "timestamp"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(255))
    metric_name: Mapped[str] = mapped_column(String(255))
    # "Name=Value" pairs sorted by name, joined by "\n": one string a series is looked up by
    dimensions: Mapped[str] = mapped_column(String(1024))
    timestamp: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    sample_count: Mapped[float] = mapped_column(Float)
    sum: Mapped[float] = mapped_column(Float)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
