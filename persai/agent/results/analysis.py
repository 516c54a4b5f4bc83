"""What stands out in one time series: spikes, dips, sudden changes, counter resets and gaps.

Each series is judged against its own baseline with robust statistics (median and median
absolute deviation), so one incident does not hide itself by moving the baseline, and a thousand
ordinary series do not outrank the one that misbehaves. Scores are robust z-scores: how many
"usual spreads" a point lies from the series' median.

A series is two numpy arrays (times, values): a worker renders hundreds of tool results at once on
one core, and over whole arrays a result of 1,000 series renders 3x faster than over Python's
lists (`bench/tool_output.py`). Means are exact sums (`math.fsum`) and medians the middle of the
sorted values, as in `statistics`, so the figures are the same as they were.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from persai.agent.results.text import format_time, format_value

Floats = NDArray[np.float64]

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


def median(values: Floats) -> float:
    """The middle value, or the mean of the two middle ones (as `statistics.median`)."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def mean(values: Floats) -> float:
    """The exactly rounded mean (as `statistics.fmean`)."""
    return math.fsum(values.tolist()) / len(values)


def differences(values: Floats) -> Floats:
    """Each value minus the one before it."""
    return values[1:] - values[:-1]


def robust_spread(values: Floats | Sequence[float], center: float) -> float:
    """A robust standard deviation: scaled MAD, or the mean absolute deviation when MAD is 0.

    MAD is 0 when more than half the values are equal (`up`, restart counters, quantised
    rates); the mean absolute deviation still measures the rest.
    """
    deviations = np.abs(np.asarray(values, dtype=np.float64) - center)
    mad = median(deviations) * _MAD_TO_SIGMA
    return mad if mad > 0 else mean(deviations) * _MEAN_AD_TO_SIGMA


def analyse(labels: Mapping[str, str], times: Floats, values: Floats, grid: Grid) -> SeriesSummary:
    """Summarise one series (Unix times and their values) evaluated on `grid`."""
    finite = np.isfinite(values)
    events, note = _gap_events(times, grid)
    unfinite = len(values) - int(np.count_nonzero(finite))
    if unfinite:
        note += f" {unfinite} NaN/Inf points."
        times, values = times[finite], values[finite]
    if not len(values):
        nan = math.nan
        return SeriesSummary(
            labels, unfinite, nan, nan, nan, nan, "no numbers", tuple(events), note
        )
    raw = values
    if labels.get("__name__", "").endswith(COUNTER_SUFFIXES):
        events += _reset_events(times, values)
        times, values = _as_rate(times, values)
        unit = "/s (rate)"
    else:
        unit = ""
    events += _shape_events(times, values, unit)
    events.sort(key=lambda e: -e.score)
    return SeriesSummary(
        labels=labels,
        points=len(raw) + unfinite,
        minimum=float(raw.min()),
        maximum=float(raw.max()),
        mean=mean(raw),
        last=float(raw[-1]),
        trend=("rate " if unit else "") + _trend(values),
        events=tuple(events),
        note=note.strip(),
    )


def _shape_events(times: Floats, values: Floats, unit: str) -> list[Event]:
    if len(values) < 3:
        return []
    center = median(values)
    diffs = differences(values)
    diffs_center = median(diffs)
    noise = robust_spread(diffs, diffs_center) / math.sqrt(2)
    floor = 1e-9 * max(1.0, abs(center))
    spread = max(robust_spread(values, center), noise, floor)
    runs = _excursions(times, values, center, spread, unit)
    spans = [e.span for e in runs if e.span]
    usual_change = max(noise * math.sqrt(2), floor)
    jumps = _jumps(times, values, (diffs, diffs_center, center), usual_change, spans, unit)
    return runs + jumps


def _excursions(
    times: Floats, values: Floats, center: float, spread: float, unit: str
) -> list[Event]:
    """The two strongest stretches of points far from the median, as events."""
    scores = (values - center) / spread
    peaks = np.flatnonzero(np.abs(scores) >= PEAK_Z)
    if not len(peaks):
        return []
    z, at, numbers = scores.tolist(), times.tolist(), values.tolist()
    material = MIN_CHANGE * abs(center)
    found: list[Event] = []
    after = 0  # points before this one belong to a stretch already found
    for i in peaks.tolist():
        if i < after or abs(numbers[i] - center) < material:
            continue
        sign = 1 if z[i] > 0 else -1
        first = i
        while first > 0 and sign * z[first - 1] > EXTEND_Z:
            first -= 1
        last = i
        while last + 1 < len(z) and sign * z[last + 1] > EXTEND_Z:
            last += 1
        peak = max(range(first, last + 1), key=lambda k: sign * z[k])
        found.append(_run_event(at, numbers, (first, peak, last), center, spread, unit))
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
    times: Floats,
    values: Floats,
    medians: tuple[Floats, float, float],
    usual_change: float,
    spans: list[tuple[float, float]],
    unit: str,
) -> list[Event]:
    """Sudden changes between neighbouring points that no reported stretch already explains.

    `medians`: the differences between neighbouring values, their median and the values'.
    """
    diffs, center, values_center = medians
    material = MIN_CHANGE * abs(values_center)
    limit = JUMP_Z * usual_change
    sudden = np.flatnonzero((np.abs(diffs - center) >= limit) & (np.abs(diffs) >= material))
    if not len(sudden):
        return []
    step = float(differences(times).min())
    changes, at, numbers = diffs.tolist(), times.tolist(), values.tolist()
    found = []
    for i in sudden.tolist():
        change = changes[i]
        moment = at[i + 1]
        if any(s - 1.5 * step <= moment <= e + 1.5 * step for s, e in spans):
            continue
        score = abs(change - center) / usual_change
        word = "rise" if change > 0 else "drop"
        before, after = format_value(numbers[i]), format_value(numbers[i + 1])
        text = f"sudden {word} from {before}{unit} to {after}{unit} at {format_time(moment)}"
        found.append(Event(min(MAX_SCORE, score), moment, text))
    found.sort(key=lambda e: -e.score)
    return found[:2]


def _reset_events(times: Floats, values: Floats) -> list[Event]:
    resets = np.flatnonzero(values[1:] < values[:-1]) + 1
    if not len(resets):
        return []
    first = int(resets[0])
    what = f"{values[first - 1]:.6g} → {values[first]:.6g}"
    more = f" ({len(resets)} resets in all)" if len(resets) > 1 else ""
    text = f"counter reset at {format_time(float(times[first]))} ({what}){more}"
    return [Event(30.0, float(times[first]), text)]


def _as_rate(times: Floats, values: Floats) -> tuple[Floats, Floats]:
    """Per-second increase between neighbouring points; a reset counts from zero, like rate()."""
    later = values[1:]
    increase = np.where(later >= values[:-1], differences(values), later)
    return times[1:], increase / np.maximum(differences(times), 1e-9)


def _gap_events(times: Floats, grid: Grid) -> tuple[list[Event], str]:
    """Missing points inside the series, and whether it starts late or ends early."""
    if not len(times) or grid.step <= 0:
        return [], ""
    events = []
    # a point is missing where neighbours lie 1.5 steps apart or more: most series have none
    gapless = len(times) < 2 or float(differences(times).max()) < 1.25 * grid.step
    for a, b in [] if gapless else itertools.pairwise(times.tolist()):
        missing = round((b - a) / grid.step) - 1
        if missing >= 1:
            span = f"{format_time(a + grid.step)} to {format_time(b - grid.step)}"
            text = f"no data from {span} ({missing} points missing)"
            events.append(Event(8.0 + min(missing, 20) / 10, a + grid.step, text, (a, b)))
    note = ""
    first, last = float(times[0]), float(times[-1])
    if first > grid.start + grid.step / 2:
        note += f"Data only from {format_time(first)}."
    if last < grid.end - 5 * grid.step:
        events.append(Event(7.0, last, f"no data after {format_time(last)}"))
    return events, note


def _trend(values: Floats) -> str:
    """`flat`, `up 35%` or `down 12%`: the median of the last fifth against the first fifth."""
    if len(values) < 5:
        return "too short for a trend"
    fifth = max(1, len(values) // 5)
    first, last = median(values[:fifth]), median(values[-fifth:])
    change = last - first
    if abs(change) <= 0.05 * max(abs(first), abs(last)):
        return "flat"
    word = "up" if change > 0 else "down"
    if first != 0:
        return f"{word} {abs(change) / abs(first):.0%}"
    return f"{word} by {format_value(abs(change))}"
