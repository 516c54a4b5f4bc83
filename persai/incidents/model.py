"""What an incident scenario produces: metric families, their OpenMetrics text, the ground truth."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]
Sample = tuple[int, float]
"""One point: a Unix timestamp in seconds and its value."""


def default_end(now: datetime | None = None) -> datetime:
    """Now (UTC) rounded down to the minute, minus one minute, so every sample lies in the past."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(second=0, microsecond=0) - timedelta(minutes=1)


@dataclass(frozen=True)
class IncidentParams:
    """What every scenario takes: the time range, the sampling step and the random seed.

    `labels` are stamped on every series (e.g. `{"scenario": "latency_spike"}`) so that several
    scenarios can share one Prometheus and each natural query still selects only its own data.
    """

    end: datetime = field(default_factory=default_end)
    duration: timedelta = timedelta(hours=2)
    step: timedelta = timedelta(seconds=30)
    seed: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    warmup: timedelta = timedelta(minutes=10)
    """Data also covers this long before `start`, so `rate(…[5m])` is whole from `start` on."""

    @property
    def start(self) -> datetime:
        """The first sample's time."""
        return self.end - self.duration

    @property
    def step_s(self) -> int:
        """The step in whole seconds (at least one)."""
        return max(1, int(self.step.total_seconds()))

    def timestamps(self) -> list[int]:
        """Sample times in Unix seconds: from `start - warmup` every `step`, up to `end` excluded.

        With the defaults (2 h, 30 s, 10 min) a range query over `start`..`end` sees 241 points.
        """
        first = int(self.start.timestamp())
        lead = int(self.warmup.total_seconds()) // self.step_s
        count = int(self.duration.total_seconds()) // self.step_s
        return [first + i * self.step_s for i in range(-lead, count)]


@dataclass
class Family:
    """One metric family: its name (without `_total` for counters), type, help and series."""

    name: str
    type: MetricType
    help: str
    series: list[tuple[str, dict[str, str], list[Sample]]] = field(default_factory=list)
    """(sample name, labels, samples) triples, each in time order."""

    def add(self, labels: Mapping[str, str], samples: Sequence[Sample], suffix: str = "") -> None:
        """Add one series; `suffix` is `_total`, `_bucket`, `_sum` or `_count` where needed."""
        self.series.append((self.name + suffix, dict(labels), list(samples)))


@dataclass(frozen=True)
class GroundTruth:
    """What really happened, for judging an answer or a tool's output.

    `culprit` is the label set that tells the guilty series apart in the natural query's result
    (`None` when nothing is wrong); `window_start`/`window_end` bound the anomaly (UTC).
    """

    question: str
    query: str
    metrics: tuple[str, ...]
    culprit: Mapping[str, str] | None
    window_start: datetime | None
    window_end: datetime | None
    rate_window_s: int = 0
    """The range of `rate()` in `query`, in seconds: its output lags the raw data by up to this."""

    @property
    def culprit_value(self) -> str | None:
        """The value of the culprit's distinguishing label (e.g. the service name)."""
        if not self.culprit:
            return None
        return next(iter(self.culprit.values()))


@dataclass(frozen=True)
class Incident:
    """A generated scenario: its data and its ground truth."""

    scenario: str
    params: IncidentParams
    families: tuple[Family, ...]
    truth: GroundTruth

    def openmetrics(self) -> str:
        """The data as OpenMetrics text, for `promtool tsdb create-blocks-from openmetrics`."""
        return to_openmetrics([self])

    @property
    def series_count(self) -> int:
        """How many series the data holds."""
        return sum(len(family.series) for family in self.families)


@dataclass(frozen=True)
class Scenario:
    """A named, parameterised generator of one kind of incident."""

    name: str
    description: str
    defaults: Mapping[str, float]
    build: Callable[[IncidentParams, Mapping[str, float]], Incident]

    def generate(self, params: IncidentParams | None = None, **options: float) -> Incident:
        """Generate the incident; `options` override the scenario's `defaults` by name."""
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name} has no option(s) {sorted(unknown)}")
        return self.build(params or IncidentParams(), {**self.defaults, **options})


def to_openmetrics(incidents: Iterable[Incident]) -> str:
    """One OpenMetrics document holding every incident's data, families merged by name."""
    merged: dict[str, Family] = {}
    for incident in incidents:
        for family in incident.families:
            target = merged.setdefault(family.name, Family(family.name, family.type, family.help))
            if target.type != family.type:
                raise ValueError(f"{family.name} is both {target.type} and {family.type}")
            target.series.extend(family.series)
    lines: list[str] = []
    for family in merged.values():
        lines.append(f"# TYPE {family.name} {family.type}")
        lines.append(f"# HELP {family.name} {family.help}")
        for sample_name, labels, samples in family.series:
            selector = sample_name + _labels_text(labels)
            lines.extend(f"{selector} {_value_text(v)} {t}" for t, v in samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _labels_text(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value_text(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(round(value, 6))


def matchers(params: IncidentParams, *more: str) -> str:
    """PromQL label matchers for the params' stamped labels plus `more` (`code=~"5.."`).

    `{scenario="x", code=~"5.."}`, or an empty string when there is nothing to match.
    """
    parts = [f'{k}="{v}"' for k, v in params.labels.items()] + list(more)
    return "{" + ", ".join(parts) + "}" if parts else ""


def utc(timestamp: int | float) -> datetime:
    """A Unix time in seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)
