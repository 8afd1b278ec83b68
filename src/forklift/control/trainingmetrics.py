"""A training job's `AlgorithmSpecification.MetricDefinitions`, applied to its log lines as SageMaker
does: each definition's regex is searched in each line the container writes, and the first capture
group (the whole match when it has none), read as a float, is a point of the metric `Name` in
namespace `/aws/sagemaker/TrainingJobs` at the line's time, in two series: dimension
`Host=<job>/algo-1` (SageMaker's per-host series) and `TrainingJobName=<job>` (the one the SDK's
`TrainingJobAnalytics` asks for).

The regexes are the user's, so they run on RE2 (time linear in the line, no backtracking): one
`re2.Set` pass tells which definitions match a line at all, and only those are searched for their
group. What a container can make of this is bounded:

- a line is cut to `MAX_LINE` characters before it is matched;
- a metric keeps one point per second, the last value printed in it (a point within a second
  replaces the one before);
- a job keeps at most `MAX_POINTS` points per metric; past that the metric's newest point moves
  forward with each new value instead, so `FinalMetricDataList` stays the last value printed;
- points are written once per drain of the log (a quarter second), in one transaction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from forklift.control.errors import InvalidRequest
from forklift.control.metricstore import Aggregate, MetricStore, Series, SeriesState, dimension_key

log = logging.getLogger(__name__)

NAMESPACE = "/aws/sagemaker/TrainingJobs"
MAX_LINE = 4096  # characters of a line that are matched
MAX_POINTS = 10_000  # per metric and job
MAX_DEFINITIONS = 40  # SageMaker's (MetricDefinitionList's max)
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print each refusal on the server's stderr
_OPTIONS.max_mem = 8 << 20  # a regex whose program needs more than this is refused at CreateTrainingJob


def host_dimensions(job: str) -> str:
    return dimension_key({"Host": f"{job}/algo-1"})


def job_dimensions(job: str) -> str:
    """The series the SageMaker SDK's `TrainingJobAnalytics` reads (dimension `TrainingJobName`)."""
    return dimension_key({"TrainingJobName": job})


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: str


def definitions_of(request: dict[str, Any]) -> list[MetricDefinition]:
    algorithm = request.get("AlgorithmSpecification") or {}
    return [MetricDefinition(d["Name"], d["Regex"]) for d in algorithm.get("MetricDefinitions") or []]


def _compile(definition: MetricDefinition, index: int) -> Any:
    try:
        return re2.compile(definition.regex, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    raise InvalidRequest(
        f"AlgorithmSpecification.MetricDefinitions[{index}].Regex {definition.regex!r} is not a regular expression "
        f"forklift can match ({reason}); metric regexes run on RE2, which has no backreferences, lookaround or "
        "possessive quantifiers: rewrite it without them")


def check_definitions(request: dict[str, Any]) -> None:
    """Refuse (InvalidRequest, naming the definition) what could not be matched."""
    definitions = definitions_of(request)
    if len(definitions) > MAX_DEFINITIONS:
        raise InvalidRequest(f"AlgorithmSpecification.MetricDefinitions has {len(definitions)} definitions; "
                             f"at most {MAX_DEFINITIONS} are allowed")
    names = set()
    for index, definition in enumerate(definitions):
        if definition.name in names:
            raise InvalidRequest(f"AlgorithmSpecification.MetricDefinitions[{index}].Name {definition.name!r} is "
                                 "defined more than once")
        names.add(definition.name)
        if "\x00" in definition.name:
            raise InvalidRequest(f"AlgorithmSpecification.MetricDefinitions[{index}].Name holds a NUL character, "
                                 "which no metric name may: remove it")
        _compile(definition, index)
    if definitions:
        _compile_set(definitions)


def _compile_set(definitions: Sequence[MetricDefinition]) -> Any:
    """The `re2.Set` of every definition: it shares one memory budget, so regexes RE2 takes one by one
    can still be too much together (and the job would fail only once its container runs)."""
    matcher = re2.Set.SearchSet(_OPTIONS)
    for definition in definitions:
        matcher.Add(definition.regex)
    try:
        matcher.Compile()
    except re2.error:
        raise InvalidRequest(
            f"AlgorithmSpecification.MetricDefinitions: the {len(definitions)} regexes together need more than "
            f"the {_OPTIONS.max_mem >> 20} MiB RE2 matches a job's log lines with; use fewer definitions or "
            "shorter repetitions (a bounded {m,n} is expanded n times)") from None
    return matcher


class MetricMatcher:
    """The definitions compiled: `values(line)` -> [(metric name, value)]."""

    def __init__(self, definitions: Sequence[MetricDefinition]) -> None:
        self.names = [d.name for d in definitions]
        self.patterns = [_compile(d, i) for i, d in enumerate(definitions)]
        self.set = _compile_set(definitions)

    def values(self, line: str) -> list[tuple[str, float]]:
        line = line[:MAX_LINE]
        hits = self.set.Match(line)
        if not hits:
            return []
        found = []
        for index in hits:
            pattern = self.patterns[index]
            match = pattern.search(line)
            if match is None:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                value = float(text or "")
            except ValueError:
                continue  # SageMaker skips a match that is no number
            if math.isfinite(value):
                found.append((self.names[index], value))
        return found


class TrainingMetrics:
    """Fed each drain's lines by the job's LogPump; writes the points of that drain at once."""

    def __init__(self, store: MetricStore, job: str, definitions: Sequence[MetricDefinition]) -> None:
        self.store = store
        self.matcher = MetricMatcher(definitions)
        self.dimensions = host_dimensions(job)
        self.job = job
        # where each metric stands in the database: a restarted server goes on from there
        self.state: dict[str, SeriesState] = store.states(NAMESPACE, self.dimensions)
        self._capped: set[str] = set()

    def __call__(self, lines: Iterable[tuple[int, str]]) -> None:
        samples: dict[str, list[tuple[float, float]]] = {}
        for stamp, text in lines:
            for name, value in self.matcher.values(text):
                samples.setdefault(name, []).append((float(stamp // 1000), value))
        inserts: list[Aggregate] = []
        replaces: list[tuple[float, Aggregate]] = []
        for name, points in samples.items():
            fresh, rewrite, old = self._apply(name, points)
            for dimensions in (self.dimensions, job_dimensions(self.job)):  # the same points in both series
                series = Series(NAMESPACE, name, dimensions)
                inserts += [_sample(series, second, value) for second, value in fresh.items()]
                if rewrite is not None:
                    replaces.append((old, _sample(series, *rewrite)))
        self.store.write_samples(inserts, replaces)

    def _apply(self, name: str, points: list[tuple[float, float]]
               ) -> tuple[dict[float, float], tuple[float, float] | None, float]:
        """The rows to add (second -> value), the new (second, value) of the metric's newest row as it
        was before (None: unchanged), and that row's second."""
        state = self.state.get(name) or SeriesState(0, -math.inf)
        count, last = state.count, state.last
        fresh: dict[float, float] = {}
        rewrite = None
        for second, value in points:
            if count and (second <= last or count >= MAX_POINTS):
                if count >= MAX_POINTS and name not in self._capped:
                    self._capped.add(name)
                    log.info("training job %s: metric %s holds %d points; its newest point now moves with each "
                             "new value", self.job, name, MAX_POINTS)
                at = max(second, last)  # the newest point takes the value, moving forward past the cap
                if last in fresh:
                    del fresh[last]
                    fresh[at] = value
                else:
                    rewrite = (at, value)
                last = at
            else:
                fresh[second] = value
                count, last = count + 1, second
        self.state[name] = SeriesState(count, last)
        return fresh, rewrite, state.last


def _sample(series: Series, second: float, value: float) -> Aggregate:
    return Aggregate(series, second, 1.0, value, value, value, "None")
