"""The CloudWatch Logs subset (`Logs_20140328.*`) the SageMaker SDK uses to stream job logs.

DescribeLogGroups, DescribeLogStreams, GetLogEvents and FilterLogEvents over a `LogSource`.
GetLogEvents tokens are `f/<index>` / `b/<index>` positions in the stream, as on CloudWatch: a
forward token points after the last event returned (and comes back unchanged when nothing new was
written), a backward token at the first one. FilterLogEvents merges the chosen streams by time
(`logpattern` matches the filter pattern); its token is the (time, stream, position) of the last
event returned.

A FilterLogEvents call scans for at most `FILTER_TIME_BUDGET` seconds (always at least one event):
past it, it answers with what it found and a `nextToken` after the last event it looked at, as
CloudWatch does when a search runs long, and the client's next call goes on from there.
"""

from __future__ import annotations

import heapq
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from forklift.api.context import RequestContext
from forklift.api.errors import ApiError
from forklift.api.logpattern import compile_pattern
from forklift.api.protocol import log_group_arn, log_group_name
from forklift.api.tokens import decode_event_token, decode_token, encode_event_token, encode_token, keyset_page
from forklift.control.logsource import LogEvent, LogSource

CHUNK = 1000
FILTER_TIME_BUDGET = 5.0  # seconds one FilterLogEvents call may scan
GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."


def logs_handlers(source: LogSource, filter_time_budget: float = FILTER_TIME_BUDGET
                  ) -> dict[str, Callable[[dict, RequestContext], dict]]:
    api = LogsApi(source, filter_time_budget)
    return {
        "DescribeLogGroups": api.describe_log_groups,
        "DescribeLogStreams": api.describe_log_streams,
        "GetLogEvents": api.get_log_events,
        "FilterLogEvents": api.filter_log_events,
    }


def _group_name(params: dict) -> str:
    name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
    if name and identifier:
        raise ApiError.logs_invalid_parameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if identifier:
        return log_group_name(identifier)
    if not name:
        raise ApiError.logs_invalid_parameter("Either logGroupName or logGroupIdentifier must be specified.")
    return name


def group_arn(ctx: RequestContext, group: str) -> str:
    return log_group_arn(group, ctx.region, ctx.account)


class LogsApi:
    def __init__(self, source: LogSource, filter_time_budget: float = FILTER_TIME_BUDGET) -> None:
        self.source = source
        self.filter_time_budget = filter_time_budget

    def describe_log_groups(self, params: dict, ctx: RequestContext) -> dict:
        prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
        if prefix and pattern:
            raise ApiError.logs_invalid_parameter(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        groups = list(self.source.groups(prefix))
        if pattern:
            groups = [g for g in groups if pattern.lower() in g.name.lower()]
        wanted = params.get("logGroupIdentifiers")
        if wanted:
            names = {w.split(":log-group:", 1)[-1].removesuffix(":*") for w in wanted}
            groups = [g for g in groups if g.name in names]
        page, token = keyset_page(groups, lambda g: (g.name,), token=params.get("nextToken"),
                                  limit=params.get("limit", 50), kind="logs:groups",
                                  error=ApiError.logs_invalid_parameter)
        return {
            "logGroups": [{
                "logGroupName": g.name,
                "creationTime": g.creation_time,
                "metricFilterCount": 0,
                "arn": group_arn(ctx, g.name) + ":*",
                "storedBytes": 0,
                "logGroupClass": "STANDARD",
                "logGroupArn": group_arn(ctx, g.name),
            } for g in page],
            "nextToken": token,
        }

    def describe_log_streams(self, params: dict, ctx: RequestContext) -> dict:
        group = _group_name(params)
        prefix = params.get("logStreamNamePrefix")
        order = params.get("orderBy", "LogStreamName")
        if order == "LastEventTime" and prefix:
            raise ApiError.logs_invalid_parameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = self.source.streams(group, prefix)
        if streams is None:
            raise ApiError.logs_not_found(GROUP_NOT_FOUND)
        if order == "LastEventTime":
            def key(s): return (s.last_event_timestamp or 0, s.name)
        else:
            def key(s): return (s.name,)
        descending = bool(params.get("descending", False))
        page, token = keyset_page(list(streams), key, token=params.get("nextToken"), limit=params.get("limit", 50),
                                  descending=descending, kind=f"logs:streams:{group}:{order}:{descending}",
                                  error=ApiError.logs_invalid_parameter)
        return {
            "logStreams": [{
                "logStreamName": s.name,
                "creationTime": s.creation_time,
                "firstEventTimestamp": s.first_event_timestamp,
                "lastEventTimestamp": s.last_event_timestamp,
                "lastIngestionTime": s.last_ingestion_time,
                "arn": f"{group_arn(ctx, group)}:log-stream:{s.name}",
                "storedBytes": s.stored_bytes,
            } for s in page],
            "nextToken": token,
        }

    def get_log_events(self, params: dict, ctx: RequestContext) -> dict:
        group, stream = _group_name(params), params["logStreamName"]
        limit = params.get("limit", 10000)
        window = (params.get("startTime"), params.get("endTime"))
        if params.get("nextToken"):
            direction, index = decode_event_token(params["nextToken"])
        elif params.get("startFromHead"):
            direction, index = "f", 0
        else:
            direction, index = "b", self._read(group, stream, -1, 1)[1]
        scan = self._forward if direction == "f" else self._backward
        found = scan(group, stream, index, limit, window)
        first = found[0][0] if found else index
        after = found[-1][0] + 1 if found else index
        return {
            "events": [{"timestamp": e.timestamp, "message": e.message,
                        "ingestionTime": e.ingestion_time if e.ingestion_time is not None else e.timestamp}
                       for _, e in found],
            "nextForwardToken": encode_event_token("f", after),
            "nextBackwardToken": encode_event_token("b", first),
        }

    def filter_log_events(self, params: dict, ctx: RequestContext) -> dict:
        group = _group_name(params)
        names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
        if names and prefix:
            raise ApiError.logs_invalid_parameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        try:
            matches = compile_pattern(params.get("filterPattern"))
        except ValueError as exc:
            raise ApiError.logs_invalid_parameter(str(exc)) from None
        streams = self.source.streams(group, prefix)
        if streams is None:
            raise ApiError.logs_not_found(GROUP_NOT_FOUND)
        chosen = sorted(s.name for s in streams if not names or s.name in names)
        kind = f"logs:filter:{group}"
        after = decode_token(params["nextToken"], kind, error=ApiError.logs_invalid_parameter) \
            if params.get("nextToken") else None
        if after is not None and [type(part) for part in after] != [int, str, int]:
            raise ApiError.logs_invalid_parameter("Invalid nextToken.")
        start, end = params.get("startTime"), params.get("endTime")
        limit = params.get("limit", 10000)
        found: list[tuple[int, str, int, LogEvent]] = []
        more = False
        deadline = time.monotonic() + self.filter_time_budget
        looked_at: tuple[int, str, int, LogEvent] | None = None  # the last event this call scanned
        cut_short = False
        for key in heapq.merge(*(self._stream_events(group, name) for name in chosen)):
            timestamp, _, _, event = key
            if end is not None and timestamp > end:  # unlike GetLogEvents, endTime is inclusive here
                break
            if after is not None and key[:3] <= after:
                continue
            if looked_at is not None and time.monotonic() > deadline:
                cut_short = True
                break
            looked_at = key
            if (start is not None and timestamp < start) or not matches(event.message):
                continue
            if len(found) == limit:
                more = True
                break
            found.append(key)
        if more:
            token = encode_token(found[-1][:3], kind)
        elif cut_short and looked_at is not None:
            token = encode_token(looked_at[:3], kind)
        else:
            token = None
        return {
            "events": [{"logStreamName": stream, "timestamp": e.timestamp, "message": e.message,
                        "ingestionTime": e.ingestion_time if e.ingestion_time is not None else e.timestamp,
                        "eventId": f"{e.timestamp:013d}{zlib.crc32(stream.encode()):010d}{index:010d}"}
                       for _, stream, index, e in found],
            "searchedLogStreams": [{"logStreamName": name, "searchedCompletely": not cut_short} for name in chosen],
            "nextToken": token,
        }

    def _stream_events(self, group: str, stream: str) -> Iterator[tuple[int, str, int, LogEvent]]:
        """(timestamp, stream, position, event) of every event of a stream, oldest first."""
        position = 0
        while True:
            result = self.source.events(group, stream, position, CHUNK)
            if result is None:
                return
            events, next_index = result
            if not events or next_index <= position:
                return
            base = next_index - len(events)
            for offset, event in enumerate(events):
                yield event.timestamp, stream, base + offset, event
            position = next_index

    def _read(self, group: str, stream: str, start: int, limit: int) -> tuple[list[LogEvent], int]:
        result = self.source.events(group, stream, start, limit)
        if result is None:
            if self.source.streams(group, None) is None:
                raise ApiError.logs_not_found(GROUP_NOT_FOUND)
            raise ApiError.logs_not_found(STREAM_NOT_FOUND)
        events, next_index = result
        return list(events), next_index

    @staticmethod
    def _in_window(event: Any, window: tuple[int | None, int | None]) -> bool:
        start, end = window
        return (start is None or event.timestamp >= start) and (end is None or event.timestamp < end)

    def _forward(self, group: str, stream: str, index: int, limit: int, window) -> list[tuple[int, LogEvent]]:
        found: list[tuple[int, LogEvent]] = []
        position = index
        while len(found) < limit:
            events, next_index = self._read(group, stream, position, CHUNK)
            if not events or next_index <= position:
                break
            base = next_index - len(events)
            for offset, event in enumerate(events):
                if self._in_window(event, window):
                    found.append((base + offset, event))
                    if len(found) == limit:
                        break
            position = next_index
        return found

    def _backward(self, group: str, stream: str, index: int, limit: int, window) -> list[tuple[int, LogEvent]]:
        found: list[tuple[int, LogEvent]] = []
        upper = index
        while len(found) < limit and upper > 0:
            low = max(0, upper - CHUNK)
            events, next_index = self._read(group, stream, low, upper - low)
            base = next_index - len(events)
            for offset in range(len(events) - 1, -1, -1):
                if self._in_window(events[offset], window):
                    found.append((base + offset, events[offset]))
                    if len(found) == limit:
                        break
            upper = low
        found.reverse()
        return found
