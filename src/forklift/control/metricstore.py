"""Metric data points in the database (`metric_points`), as CloudWatch keeps them.

A series is (namespace, metric name, dimensions); `dimensions` is one string, the "Name=Value"
pairs sorted by name and joined by "\\n" (`dimension_key`). A row is one period's aggregate
(sample count, sum, minimum, maximum): a training metric's row is the last value its job printed in
one second; an endpoint's row is one minute of invocations. Writers batch: one transaction per
drain of a job's log, one per flush of the invocation counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from forklift.control.metricrows import MetricPointRow
from forklift.db import session_factory


def dimension_key(dimensions: Mapping[str, str]) -> str:
    """The canonical string of a series' dimensions."""
    return "\n".join(f"{name}={dimensions[name]}" for name in sorted(dimensions))


def dimension_pairs(key: str) -> list[tuple[str, str]]:
    """The (Name, Value) pairs of a canonical dimensions string."""
    return [tuple(pair.split("=", 1)) for pair in key.split("\n") if pair]  # type: ignore[misc]


@dataclass(frozen=True)
class Series:
    namespace: str
    metric_name: str
    dimensions: str


@dataclass(frozen=True)
class Aggregate:
    """One period of a series: what a row holds."""

    series: Series
    timestamp: float
    sample_count: float
    sum: float
    minimum: float
    maximum: float
    unit: str | None = None

    def merged(self, other: Aggregate) -> Aggregate:
        return Aggregate(self.series, self.timestamp, self.sample_count + other.sample_count, self.sum + other.sum,
                         min(self.minimum, other.minimum), max(self.maximum, other.maximum), self.unit or other.unit)


@dataclass(frozen=True)
class SeriesState:
    """How many points a series holds, and the newest one's time."""

    count: int
    last: float


def _aggregate(row: MetricPointRow) -> Aggregate:
    return Aggregate(Series(row.namespace, row.metric_name, row.dimensions), row.timestamp, row.sample_count,
                     row.sum, row.minimum, row.maximum, row.unit)


class MetricStore:
    def __init__(self, database_url: str, sessions: sessionmaker[Session] | None = None):
        self._sessions = sessions or session_factory(database_url)

    # -- writers ---------------------------------------------------------------------------------
    def states(self, namespace: str, dimensions: str) -> dict[str, SeriesState]:
        """Per metric name of (namespace, dimensions): its row count and newest timestamp."""
        with self._sessions() as session:
            rows = session.execute(
                select(MetricPointRow.metric_name, func.count(), func.max(MetricPointRow.timestamp))
                .where(MetricPointRow.namespace == namespace, MetricPointRow.dimensions == dimensions)
                .group_by(MetricPointRow.metric_name)).all()
        return {name: SeriesState(int(count), float(last)) for name, count, last in rows}

    def write_samples(self, inserts: Sequence[Aggregate], replaces: Sequence[tuple[float, Aggregate]]) -> None:
        """In one transaction: add `inserts`; replace the row of each (old timestamp, new aggregate) of
        `replaces` (same series) by the new one."""
        if not inserts and not replaces:
            return
        with self._sessions.begin() as session:
            for old, new in replaces:
                s = new.series
                session.execute(update(MetricPointRow).where(
                    MetricPointRow.namespace == s.namespace, MetricPointRow.metric_name == s.metric_name,
                    MetricPointRow.dimensions == s.dimensions, MetricPointRow.timestamp == old,
                ).values(timestamp=new.timestamp, sample_count=new.sample_count, sum=new.sum, minimum=new.minimum,
                         maximum=new.maximum, unit=new.unit))
            session.add_all([_row(a) for a in inserts])

    def merge(self, aggregates: Iterable[Aggregate]) -> None:
        """Add each aggregate into its series' row at its timestamp (made when there is none), in one
        transaction."""
        aggregates = list(aggregates)
        if not aggregates:
            return
        with self._sessions.begin() as session:
            for a in aggregates:
                s = a.series
                row = session.scalar(select(MetricPointRow).where(
                    MetricPointRow.namespace == s.namespace, MetricPointRow.metric_name == s.metric_name,
                    MetricPointRow.dimensions == s.dimensions, MetricPointRow.timestamp == a.timestamp).limit(1))
                if row is None:
                    session.add(_row(a))
                    continue
                total = _aggregate(row).merged(a)
                row.sample_count, row.sum = total.sample_count, total.sum
                row.minimum, row.maximum, row.unit = total.minimum, total.maximum, total.unit

    def forget(self, namespace: str, dimensions: str) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(MetricPointRow).where(MetricPointRow.namespace == namespace,
                                                         MetricPointRow.dimensions == dimensions))

    # -- readers ---------------------------------------------------------------------------------
    def latest(self, namespace: str, dimensions: str) -> list[Aggregate]:
        """The newest row of each metric of (namespace, dimensions), by metric name."""
        with self._sessions() as session:
            newest = (select(MetricPointRow.metric_name, func.max(MetricPointRow.timestamp).label("last"))
                      .where(MetricPointRow.namespace == namespace, MetricPointRow.dimensions == dimensions)
                      .group_by(MetricPointRow.metric_name).subquery())
            rows = session.scalars(select(MetricPointRow).join(newest, and_(
                MetricPointRow.metric_name == newest.c.metric_name, MetricPointRow.timestamp == newest.c.last))
                .where(MetricPointRow.namespace == namespace, MetricPointRow.dimensions == dimensions)
                .order_by(MetricPointRow.metric_name, MetricPointRow.id)).all()
        by_name: dict[str, Aggregate] = {}
        for row in rows:
            by_name[row.metric_name] = _aggregate(row)  # of equal times, the last written
        return list(by_name.values())

    def series(self, namespace: str | None = None, metric_name: str | None = None,
               after: Series | None = None, limit: int = 500) -> list[Series]:
        """Distinct series, in (namespace, metric name, dimensions) order, after `after`."""
        if _unstorable(namespace, metric_name, *(astuple(after) if after is not None else ())):
            return []
        columns = (MetricPointRow.namespace, MetricPointRow.metric_name, MetricPointRow.dimensions)
        query = select(*columns).distinct()
        if namespace is not None:
            query = query.where(MetricPointRow.namespace == namespace)
        if metric_name is not None:
            query = query.where(MetricPointRow.metric_name == metric_name)
        if after is not None:
            query = query.where(_after(after))
        with self._sessions() as session:
            rows = session.execute(query.order_by(*columns).limit(limit)).all()
        return [Series(*row) for row in rows]

    def points(self, series: Series, start: float, end: float, limit: int) -> list[Aggregate]:
        """The rows of `series` with start <= timestamp < end, oldest first, at most `limit`."""
        if _unstorable(*astuple(series)):
            return []
        with self._sessions() as session:
            rows = session.scalars(select(MetricPointRow).where(
                MetricPointRow.namespace == series.namespace, MetricPointRow.metric_name == series.metric_name,
                MetricPointRow.dimensions == series.dimensions, MetricPointRow.timestamp >= start,
                MetricPointRow.timestamp < end)
                .order_by(MetricPointRow.timestamp, MetricPointRow.id).limit(limit)).all()
        return [_aggregate(row) for row in rows]


def _unstorable(*texts: str | None) -> bool:
    """Whether a series key a reader was given holds a NUL: no stored series does (PostgreSQL's text cannot),
    and PostgreSQL refuses to even compare one, so the answer is none rather than a database error."""
    return any(text is not None and "\x00" in text for text in texts)


def _after(after: Series):
    """Keyset condition: (namespace, metric, dimensions) after `after`'s, spelled out for every dialect."""
    n, m, d = MetricPointRow.namespace, MetricPointRow.metric_name, MetricPointRow.dimensions
    return or_(n > after.namespace,
               and_(n == after.namespace, m > after.metric_name),
               and_(n == after.namespace, m == after.metric_name, d > after.dimensions))


def _row(a: Aggregate) -> MetricPointRow:
    s = a.series
    return MetricPointRow(namespace=s.namespace, metric_name=s.metric_name, dimensions=s.dimensions,
                          timestamp=a.timestamp, sample_count=a.sample_count, sum=a.sum, minimum=a.minimum,
                          maximum=a.maximum, unit=a.unit)
