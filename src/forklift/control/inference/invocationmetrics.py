"""Endpoint invocation metrics, as SageMaker publishes them in namespace `AWS/SageMaker` with
dimensions `EndpointName` and `VariantName`, one point per minute per series:

    Invocations           1 per InvokeEndpoint that reached a variant (Sum: the calls)
    Invocation4XXErrors   1 when the model answered 4xx, else 0 (Sum: the errors; Average: their rate)
    Invocation5XXErrors   1 when the model answered 5xx, did not answer or could not be reached, else 0
    ModelLatency          microseconds the container took to answer
    OverheadLatency       microseconds forklift added around that

InvokeEndpoint's hot path only adds to counters in memory (`record`, under a lock held for a few
additions); a thread merges them into `metric_points` every `FLUSH_SECONDS`, one transaction per
flush, each (series, minute) one row that later flushes of the same minute add to.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from forklift.control.metricstore import Aggregate, MetricStore, Series, dimension_key

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
FLUSH_SECONDS = 5.0
_LATENCIES = ("ModelLatency", "OverheadLatency")


class _Minute:
    """One (endpoint, variant, minute)'s counters."""

    __slots__ = ("calls", "errors4", "errors5", "latency")

    def __init__(self) -> None:
        self.calls = 0
        self.errors4 = 0
        self.errors5 = 0
        # per latency metric: [count, sum, min, max]
        self.latency = {name: [0, 0.0, math.inf, -math.inf] for name in _LATENCIES}


class InvocationMetrics:
    def __init__(self, store: MetricStore, clock=time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, float], _Minute] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, endpoint: str, variant: str, status: int | None, model_seconds: float | None,
               overhead_seconds: float) -> None:
        """One invocation sent to `variant`: the model's HTTP status (None: no answer), how long the model
        took (None: it did not answer) and how long forklift took around it."""
        minute = float(int(self.clock()) // 60 * 60)
        with self._lock:
            counters = self._pending.get((endpoint, variant, minute))
            if counters is None:
                counters = self._pending[(endpoint, variant, minute)] = _Minute()
            counters.calls += 1
            if status is not None and 400 <= status < 500:
                counters.errors4 += 1
            elif status is None or status >= 500:
                counters.errors5 += 1
            if model_seconds is not None:
                _add(counters.latency["ModelLatency"], model_seconds * 1e6)
            _add(counters.latency["OverheadLatency"], max(0.0, overhead_seconds) * 1e6)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        aggregates = []
        for (endpoint, variant, minute), c in pending.items():
            dimensions = dimension_key({"EndpointName": endpoint, "VariantName": variant})

            def point(name: str, count: float, total: float, low: float, high: float, unit: str,
                      dimensions: str = dimensions, minute: float = minute) -> Aggregate:
                return Aggregate(Series(NAMESPACE, name, dimensions), minute, count, total, low, high, unit)

            aggregates.append(point("Invocations", c.calls, c.calls, 1.0, 1.0, "None"))
            for name, errors in (("Invocation4XXErrors", c.errors4), ("Invocation5XXErrors", c.errors5)):
                aggregates.append(point(name, c.calls, errors, 1.0 if errors == c.calls else 0.0,
                                        1.0 if errors else 0.0, "None"))
            for name, (count, total, low, high) in c.latency.items():
                if count:
                    aggregates.append(point(name, count, total, low, high, "Microseconds"))
        try:
            self.store.merge(aggregates)
        except Exception:  # noqa: BLE001 - a database that fails now keeps the counts for the next flush
            log.exception("writing %d invocation metric points failed; retrying at the next flush", len(aggregates))
            with self._lock:
                for key, counters in pending.items():
                    _absorb(self._pending.setdefault(key, _Minute()), counters)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="invocation-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(FLUSH_SECONDS):
            self.flush()

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(30)
        self.flush()


def _add(stat: list, value: float) -> None:
    stat[0] += 1
    stat[1] += value
    if value < stat[2]:
        stat[2] = value
    if value > stat[3]:
        stat[3] = value


def _absorb(into: _Minute, other: _Minute) -> None:
    into.calls += other.calls
    into.errors4 += other.errors4
    into.errors5 += other.errors5
    for name, (count, total, low, high) in other.latency.items():
        stat = into.latency[name]
        stat[0] += count
        stat[1] += total
        stat[2] = min(stat[2], low)
        stat[3] = max(stat[3], high)
