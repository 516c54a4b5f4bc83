"""What stands out in one time series: spikes, dips, sudden changes, counter resets and gaps.

Each series is judged against its own baseline with robust statistics (median and median
absolute deviation), so one incident does not hide itself by moving the baseline, and a thousand
ordinary series do not outrank the one that misbehaves. Scores are robust z-scores: how many
"usual spreads" a point lies from the series' median.
"""

from __future__ import annotations

import itertools
import math
import operator
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from persai.agent.results.text import format_time, format_value

PEAK_Z = 6.0
"""A point this many usual spreads from the median makes a series stand out."""
EXTEND_Z = 3.0
"""An unusual stretch extends over neighbouring points beyond this many spreads."""
JUMP_Z = 8.0
"""A change between two neighbouring points this many usual changes large is sudden."""
MIN_CHANGE = 0.1
"""…and lie at least this fraction of the median away (a 2 % wobble of a smooth line is no news)."""
MAX_SCORE = 1000.0
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_MAD_TO_SIGMA = 1.4826
_MEAN_AD_TO_SIGMA = 1.2533


@dataclass(frozen=True)
class Grid:
    """The range query's evaluation times: `start` to `end` every `step` seconds."""

    start: float
    end: float
    step: float


@dataclass(frozen=True)
class Event:
    """One thing that stands out, with how much (`score`) and when (`at`, Unix seconds)."""

    score: float
    at: float
    text: str
    span: tuple[float, float] | None = None


@dataclass(frozen=True)
class SeriesSummary:
    """Statistics of one series and what stands out in it, most telling event first."""

    labels: Mapping[str, str]
    points: int
    minimum: float
    maximum: float
    mean: float
    last: float
    trend: str
    events: tuple[Event, ...]
    note: str = ""

    @property
    def score(self) -> float:
        """How much the series stands out: its strongest event's score, 0 for none."""
        return max((e.score for e in self.events), default=0.0)


def robust_spread(values: Sequence[float], center: float) -> float:
    """A robust standard deviation: scaled MAD, or the mean absolute deviation when MAD is 0.

    MAD is 0 when more than half the values are equal (`up`, restart counters, quantised
    rates); the mean absolute deviation still measures the rest.
    """
    deviations = [abs(v - center) for v in values]
    mad = statistics.median(deviations) * _MAD_TO_SIGMA
    return mad if mad > 0 else statistics.fmean(deviations) * _MEAN_AD_TO_SIGMA


def analyse(
    labels: Mapping[str, str], pairs: Sequence[tuple[float, float]], grid: Grid
) -> SeriesSummary:
    """Summarise one series of (Unix time, value) pairs evaluated on `grid`."""
    finite = [(t, v) for t, v in pairs if math.isfinite(v)]
    events, note = _gap_events([t for t, _ in pairs], grid)
    if len(pairs) > len(finite):
        note += f" {len(pairs) - len(finite)} NaN/Inf points."
    if not finite:
        nan = math.nan
        return SeriesSummary(
            labels, len(pairs), nan, nan, nan, nan, "no numbers", tuple(events), note
        )
    times, values = [t for t, _ in finite], [v for _, v in finite]
    if labels.get("__name__", "").endswith(COUNTER_SUFFIXES):
        events += _reset_events(times, values)
        times, values = _as_rate(times, values)
        unit = "/s (rate)"
    else:
        unit = ""
    events += _shape_events(times, values, unit)
    events.sort(key=lambda e: -e.score)
    raw = [v for _, v in finite]
    return SeriesSummary(
        labels=labels,
        points=len(pairs),
        minimum=min(raw),
        maximum=max(raw),
        mean=statistics.fmean(raw),
        last=raw[-1],
        trend=("rate " if unit else "") + _trend(values),
        events=tuple(events),
        note=note.strip(),
    )


def _differences(values: list[float]) -> list[float]:
    """Each value minus the one before it."""
    return list(map(operator.sub, values[1:], values[:-1]))


def _shape_events(times: list[float], values: list[float], unit: str) -> list[Event]:
    if len(values) < 3:
        return []
    center = statistics.median(values)
    diffs = _differences(values)
    diffs_center = statistics.median(diffs)
    noise = robust_spread(diffs, diffs_center) / math.sqrt(2)
    floor = 1e-9 * max(1.0, abs(center))
    spread = max(robust_spread(values, center), noise, floor)
    runs = _excursions(times, values, center, spread, unit)
    spans = [e.span for e in runs if e.span]
    usual_change = max(noise * math.sqrt(2), floor)
    jumps = _jumps(times, values, (diffs, diffs_center, center), usual_change, spans, unit)
    return runs + jumps


def _excursions(
    times: list[float], values: list[float], center: float, spread: float, unit: str
) -> list[Event]:
    """The two strongest stretches of points far from the median, as events."""
    z = [(v - center) / spread for v in values]
    material = MIN_CHANGE * abs(center)
    found: list[Event] = []
    after = 0  # points before this one belong to a stretch already found
    for i in [k for k, score in enumerate(z) if abs(score) >= PEAK_Z]:
        if i < after or abs(values[i] - center) < material:
            continue
        sign = 1 if z[i] > 0 else -1
        first = i
        while first > 0 and sign * z[first - 1] > EXTEND_Z:
            first -= 1
        last = i
        while last + 1 < len(z) and sign * z[last + 1] > EXTEND_Z:
            last += 1
        peak = max(range(first, last + 1), key=lambda k: sign * z[k])
        found.append(_run_event(times, values, (first, peak, last), center, spread, unit))
        after = last + 1
    found.sort(key=lambda e: -e.score)
    return found[:2]


def _run_event(
    times: list[float],
    values: list[float],
    run: tuple[int, int, int],
    center: float,
    spread: float,
    unit: str,
) -> Event:
    first, peak, last = run
    up = values[peak] > center
    score = min(MAX_SCORE, abs(values[peak] - center) / spread)
    extreme = f"{'peak' if up else 'lowest'} {format_value(values[peak])}{unit}"
    extreme += f" at {format_time(times[peak])}"
    usual = f"usual {format_value(center)} ± {format_value(spread)}"
    word = "high" if up else "low"
    if last == len(values) - 1 and first > 0:
        text = f"{word} since {format_time(times[first])} until the end, {extreme} ({usual})"
    elif first == 0 and last < len(values) - 1:
        text = f"{word} from the start until {format_time(times[last])}, {extreme} ({usual})"
    else:
        kind = "spike" if up else "dip"
        span_text = f"{format_time(times[first])} to {format_time(times[last])}"
        text = f"{kind} from {span_text}, {extreme} ({usual})"
    return Event(score, times[peak], text, (times[first], times[last]))


def _jumps(
    times: list[float],
    values: list[float],
    medians: tuple[list[float], float, float],
    usual_change: float,
    spans: list[tuple[float, float]],
    unit: str,
) -> list[Event]:
    """Sudden changes between neighbouring points that no reported stretch already explains.

    `medians`: the differences between neighbouring values, their median and the values'.
    """
    diffs, center, values_center = medians
    step = min(_differences(times), default=0.0)
    material = MIN_CHANGE * abs(values_center)
    limit = JUMP_Z * usual_change
    found = []
    for i in [k for k, d in enumerate(diffs) if abs(d - center) >= limit and abs(d) >= material]:
        change = diffs[i]
        at = times[i + 1]
        if any(s - 1.5 * step <= at <= e + 1.5 * step for s, e in spans):
            continue
        score = abs(change - center) / usual_change
        word = "rise" if change > 0 else "drop"
        before, after = format_value(values[i]), format_value(values[i + 1])
        text = f"sudden {word} from {before}{unit} to {after}{unit} at {format_time(at)}"
        found.append(Event(min(MAX_SCORE, score), at, text))
    found.sort(key=lambda e: -e.score)
    return found[:2]


def _reset_events(times: list[float], values: list[float]) -> list[Event]:
    resets = [i for i in range(1, len(values)) if values[i] < values[i - 1]]
    if not resets:
        return []
    first = resets[0]
    what = f"{values[first - 1]:.6g} → {values[first]:.6g}"
    more = f" ({len(resets)} resets in all)" if len(resets) > 1 else ""
    text = f"counter reset at {format_time(times[first])} ({what}){more}"
    return [Event(30.0, times[first], text)]


def _as_rate(times: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """Per-second increase between neighbouring points; a reset counts from zero, like rate()."""
    rates = []
    for i in range(1, len(values)):
        increase = values[i] - values[i - 1] if values[i] >= values[i - 1] else values[i]
        rates.append(increase / max(times[i] - times[i - 1], 1e-9))
    return times[1:], rates


def _gap_events(times: list[float], grid: Grid) -> tuple[list[Event], str]:
    """Missing points inside the series, and whether it starts late or ends early."""
    if not times or grid.step <= 0:
        return [], ""
    events = []
    # a point is missing where neighbours lie 1.5 steps apart or more: most series have none
    gapless = len(times) < 2 or max(_differences(times)) < 1.25 * grid.step
    for a, b in [] if gapless else itertools.pairwise(times):
        missing = round((b - a) / grid.step) - 1
        if missing >= 1:
            span = f"{format_time(a + grid.step)} to {format_time(b - grid.step)}"
            text = f"no data from {span} ({missing} points missing)"
            events.append(Event(8.0 + min(missing, 20) / 10, a + grid.step, text, (a, b)))
    note = ""
    if times[0] > grid.start + grid.step / 2:
        note += f"Data only from {format_time(times[0])}."
    if times[-1] < grid.end - 5 * grid.step:
        events.append(Event(7.0, times[-1], f"no data after {format_time(times[-1])}"))
    return events, note


def _trend(values: list[float]) -> str:
    """`flat`, `up 35%` or `down 12%`: the median of the last fifth against the first fifth."""
    if len(values) < 5:
        return "too short for a trend"
    fifth = max(1, len(values) // 5)
    first, last = statistics.median(values[:fifth]), statistics.median(values[-fifth:])
    change = last - first
    if abs(change) <= 0.05 * max(abs(first), abs(last)):
        return "flat"
    word = "up" if change > 0 else "down"
    if first != 0:
        return f"{word} {abs(change) / abs(first):.0%}"
    return f"{word} by {format_value(abs(change))}"
