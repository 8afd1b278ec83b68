"""The CloudWatch metrics subset the SageMaker SDK's `TrainingJobAnalytics` and console-style charts
read, over the server's `metric_points`: ListMetrics, GetMetricStatistics, GetMetricData.

Series are what forklift records: `/aws/sagemaker/TrainingJobs` (a job's MetricDefinitions,
dimension `Host`) and `AWS/SageMaker` (endpoint invocations, dimensions `EndpointName`,
`VariantName`). Statistics are SampleCount, Sum, Average, Minimum and Maximum over periods aligned
to multiples of the period; percentiles (ExtendedStatistics, `p50` stats) and metric math
(`Expression`) are refused with an InvalidParameterValue saying so. The handlers take validated
parameters (`api.validation` against botocore's `cloudwatch` model) and are the same for the three
wire protocols (`api.cloudwatchwire`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.protocol import epoch
from forklift.api.tokens import decode_token, encode_token
from forklift.control.metricstore import Aggregate, Series, dimension_key, dimension_pairs

MAX_DATAPOINTS = 1440  # GetMetricStatistics' limit per call
MAX_METRIC_DATA_POINTS = 100_800  # GetMetricData's default and largest MaxDatapoints
LIST_PAGE = 500
MAX_ROWS = 500_000  # rows one query reads: a day of a training metric's per-second points, with room
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
HIGH_RESOLUTION = (1, 5, 10, 30)
_QUERY_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")


def _error(code: str, message: str) -> ApiError:
    """A CloudWatch error; `x-amzn-query-error` lets botocore's query-compatible JSON and CBOR clients
    find the modelled exception by its query code."""
    return ApiError(code, message, 400, headers={"x-amzn-query-error": f"{code};Sender"})


def invalid(message: str) -> ApiError:
    return _error("InvalidParameterValue", message)


def combination(message: str) -> ApiError:
    return _error("InvalidParameterCombination", message)


def missing(message: str) -> ApiError:
    return _error("MissingParameter", message)


class MetricReader(Protocol):
    """What the handlers read (`control.metricstore.MetricStore`)."""

    def series(self, namespace: str | None = None, metric_name: str | None = None,
               after: Series | None = None, limit: int = 500) -> list[Series]: ...

    def points(self, series: Series, start: float, end: float, limit: int) -> list[Aggregate]: ...


class NoMetrics:
    """A server without a control plane: every metric is empty."""

    def series(self, namespace: str | None = None, metric_name: str | None = None,
               after: Series | None = None, limit: int = 500) -> list[Series]:
        return []

    def points(self, series: Series, start: float, end: float, limit: int) -> list[Aggregate]:
        return []


def cloudwatch_handlers(store: MetricReader) -> dict[str, Callable[[dict, RequestContext], dict]]:
    api = CloudWatchApi(store)
    return {"ListMetrics": api.list_metrics, "GetMetricStatistics": api.get_metric_statistics,
            "GetMetricData": api.get_metric_data}


def _dimensions(params: dict) -> str:
    given = params.get("Dimensions") or []
    names = [d["Name"] for d in given]
    if len(set(names)) != len(names):
        raise invalid("The collection Dimensions must not contain duplicate dimension names.")
    return dimension_key({d["Name"]: d["Value"] for d in given})


def _as_dimensions(key: str) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in dimension_pairs(key)]


def _seconds(value: datetime) -> float:
    return epoch(value)


def _check_period(period: int, where: str = "Period") -> None:
    if period < 60 and period not in HIGH_RESOLUTION:
        raise invalid(f"The parameter {where} must be 1, 5, 10, 30 or a multiple of 60.")
    if period >= 60 and period % 60:
        raise invalid(f"The parameter {where} must be a multiple of 60.")


def buckets(rows: Sequence[Aggregate], period: int) -> list[tuple[float, Aggregate]]:
    """`rows` aggregated into periods aligned to multiples of `period`, oldest first."""
    out: dict[float, Aggregate] = {}
    for row in rows:
        start = float(math.floor(row.timestamp / period) * period)
        held = out.get(start)
        out[start] = row if held is None else held.merged(row)
    return sorted(out.items())


def statistic(aggregate: Aggregate, name: str) -> float:
    if name == "Average":
        return aggregate.sum / aggregate.sample_count if aggregate.sample_count else 0.0
    return {"SampleCount": aggregate.sample_count, "Sum": aggregate.sum, "Minimum": aggregate.minimum,
            "Maximum": aggregate.maximum}[name]


class CloudWatchApi:
    def __init__(self, store: MetricReader) -> None:
        self.store = store

    def list_metrics(self, params: dict, ctx: RequestContext) -> dict:
        filters = [(f["Name"], f.get("Value")) for f in params.get("Dimensions") or []]
        after = None
        if params.get("NextToken"):
            after = Series(*decode_token(params["NextToken"], "cloudwatch:ListMetrics", error=invalid))
        found: list[Series] = []
        more = False
        while True:  # the store pages by key, the dimension filter is applied here
            page = self.store.series(params.get("Namespace"), params.get("MetricName"), after, LIST_PAGE)
            for series in page:
                if _matches(series, filters):
                    if len(found) == LIST_PAGE:
                        more = True
                        break
                    found.append(series)
            if more or len(page) < LIST_PAGE:
                break
            after = page[-1]
        body: dict[str, Any] = {"Metrics": [{"Namespace": s.namespace, "MetricName": s.metric_name,
                                             "Dimensions": _as_dimensions(s.dimensions)} for s in found]}
        if more:
            last = found[-1]
            body["NextToken"] = encode_token((last.namespace, last.metric_name, last.dimensions),
                                             "cloudwatch:ListMetrics")
        return body

    def _window(self, params: dict, period: int) -> tuple[float, float]:
        start, end = _seconds(params["StartTime"]), _seconds(params["EndTime"])
        if start >= end:
            raise invalid("The parameter StartTime must be less than the parameter EndTime.")
        return float(math.floor(start / period) * period), end

    def get_metric_statistics(self, params: dict, ctx: RequestContext) -> dict:
        period = params["Period"]
        _check_period(period)
        statistics, extended = params.get("Statistics") or [], params.get("ExtendedStatistics") or []
        if not statistics and not extended:
            raise missing("Must specify either Statistics or ExtendedStatistics.")
        if extended:
            raise invalid(f"forklift does not compute percentile statistics (ExtendedStatistics {', '.join(extended)});"
                          f" ask for Statistics ({', '.join(STATISTICS)}) instead.")
        start, end = self._window(params, period)
        wanted = math.ceil((end - start) / period)
        if wanted > MAX_DATAPOINTS:
            raise combination(f"You have requested up to {wanted} datapoints, which exceeds the limit of "
                              f"{MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or "
                              "decreasing the time range.")
        series = Series(params["Namespace"], params["MetricName"], _dimensions(params))
        rows = self._rows(series, start, end, params.get("Unit"))
        points = []
        for stamp, aggregate in buckets(rows, period):
            point: dict[str, Any] = {"Timestamp": stamp, "Unit": aggregate.unit or "None"}
            for name in statistics:
                point[name] = statistic(aggregate, name)
            points.append(point)
        return {"Label": params["MetricName"], "Datapoints": points}

    def _rows(self, series: Series, start: float, end: float, unit: str | None) -> list[Aggregate]:
        rows = self.store.points(series, start, end, MAX_ROWS)
        return [r for r in rows if unit is None or (r.unit or "None") == unit]

    def get_metric_data(self, params: dict, ctx: RequestContext) -> dict:
        queries = params["MetricDataQueries"]
        if not queries:
            raise invalid("The parameter MetricDataQueries must contain at least one query.")
        if len(queries) > 500:
            raise invalid("The collection MetricDataQueries must not have a size greater than 500.")
        ids = [q["Id"] for q in queries]
        for index, query in enumerate(queries):
            if not _QUERY_ID.fullmatch(query["Id"]):
                raise invalid(f"The value {query['Id']} for parameter MetricDataQueries.member.{index + 1}.Id is "
                              "invalid: it must start with a lower-case letter and hold only letters, digits and _.")
            if query.get("Expression") is not None:
                raise invalid(f"forklift does not evaluate metric math: MetricDataQueries.member.{index + 1}.Expression"
                              " is not supported; query each metric with MetricStat instead.")
            if query.get("MetricStat") is None:
                raise missing(f"The parameter MetricDataQueries.member.{index + 1}.MetricStat is required.")
        if len(set(ids)) != len(ids):
            raise invalid("The values for parameter Id in MetricDataQueries must be unique.")
        limit = params.get("MaxDatapoints") or MAX_METRIC_DATA_POINTS
        if limit < 1:
            raise invalid("The parameter MaxDatapoints must be greater than 0.")
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results = [self._query(q, params, i, descending) for i, q in enumerate(queries)]
        offset = 0
        kind = f"cloudwatch:GetMetricData:{descending}"
        if params.get("NextToken"):
            (offset,) = decode_token(params["NextToken"], kind, error=lambda m: _error("InvalidNextToken", m))
        return _page(results, offset, limit, kind)

    def _query(self, query: dict, params: dict, index: int, descending: bool) -> dict:
        stat = query["MetricStat"]
        period = stat["Period"]
        _check_period(period, f"MetricDataQueries.member.{index + 1}.MetricStat.Period")
        if stat["Stat"] not in STATISTICS:
            raise invalid(f"The statistic {stat['Stat']} of MetricDataQueries.member.{index + 1} is not supported by "
                          f"forklift; use one of {', '.join(STATISTICS)}.")
        metric = stat["Metric"]
        if not metric.get("Namespace") or not metric.get("MetricName"):
            raise missing(f"MetricDataQueries.member.{index + 1}.MetricStat.Metric needs a Namespace and a MetricName.")
        start, end = self._window(params, period)
        series = Series(metric["Namespace"], metric["MetricName"], _dimensions(metric))
        points = [(stamp, statistic(a, stat["Stat"]))
                  for stamp, a in buckets(self._rows(series, start, end, stat.get("Unit")), period)]
        if descending:
            points.reverse()
        return {"Id": query["Id"], "Label": query.get("Label") or metric["MetricName"], "points": points,
                "returned": query.get("ReturnData", True)}


def _page(results: list[dict], offset: int, limit: int, kind: str) -> dict:
    """One page of `limit` datapoints from `offset` across the queries' results, in query order."""
    out = []
    position = 0
    left = limit
    for result in results:
        points = result["points"]
        if not result["returned"]:
            continue
        begin = max(0, offset - position)
        taken = points[begin:begin + left] if begin < len(points) else []
        first_page = offset == 0
        if taken or (first_page and not points):
            left -= len(taken)
            complete = begin + len(taken) >= len(points)
            out.append({"Id": result["Id"], "Label": result["Label"], "Timestamps": [t for t, _ in taken],
                        "Values": [v for _, v in taken], "StatusCode": "Complete" if complete else "PartialData"})
        position += len(points)
    total = sum(len(r["points"]) for r in results if r["returned"])
    body: dict[str, Any] = {"MetricDataResults": out, "Messages": []}
    if offset + limit < total:
        body["NextToken"] = encode_token((offset + limit,), kind)
    return body


def _matches(series: Series, filters: list[tuple[str, str | None]]) -> bool:
    pairs = dict(dimension_pairs(series.dimensions))
    return all(name in pairs and (value is None or pairs[name] == value) for name, value in filters)
