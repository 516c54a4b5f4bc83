"""What stands out in one time series: spikes, dips, sudden changes, counter resets and gaps.

Each series is judged against its own baseline with robust statistics (median and median
absolute deviation), so one incident does not hide itself by moving the baseline, and a thousand
ordinary series do not outrank the one that misbehaves. Scores are robust z-scores: how many
"usual spreads" a point lies from the series' median. What a series shares with most others of
its result (`Explained`, found by `persai.agent.results.shared`) is not reported as its own.

A series is two numpy arrays (times, values): a worker renders hundreds of tool results at once on
one core, and over whole arrays a result of 1,000 series renders 3x faster than over Python's
lists (`bench/tool_output.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from persai.agent.results.events import NOTHING_EXPLAINED, Event, Explained, Grid
from persai.agent.results.jumps import jump_events
from persai.agent.results.presence import as_rate, gap_events, is_counter, reset_events
from persai.agent.results.query import Judging
from persai.agent.results.robust import Floats, baseline, mean, median, robust_spread
from persai.agent.results.stretches import stretch_events
from persai.agent.results.text import format_value
from persai.agent.results.thresholds import PEAK_Z

__all__ = ["PEAK_Z", "Event", "Explained", "Floats", "Grid", "Judging", "SeriesSummary"]
__all__ += ["analyse", "prepare", "robust_spread"]

PLAIN = Judging()
"""How a result is judged when its query says nothing more (see `query.judging`)."""


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


def prepare(labels: Mapping[str, str], times: Floats, values: Floats) -> tuple[Floats, Floats]:
    """The points whose shape is judged: the finite ones, as a rate for a counter."""
    finite = np.isfinite(values)
    times, values = times[finite], values[finite]
    if len(values) and is_counter(labels.get("__name__", "")):
        return as_rate(times, values)
    return times, values


def analyse(
    labels: Mapping[str, str],
    times: Floats,
    values: Floats,
    grid: Grid,
    explained: Explained = NOTHING_EXPLAINED,
    judging: Judging = PLAIN,
) -> SeriesSummary:
    """Summarise one series (Unix times and their values) evaluated on `grid`, leaving out
    what it shares with most series of its result (`explained`), as `judging` says."""
    finite = np.isfinite(values)
    events, note = gap_events(times, grid, explained)
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
    counter = is_counter(labels.get("__name__", ""))
    if counter:
        events += reset_events(times, values, explained)
        times, values = as_rate(times, values)
    unit = "/s (rate)" if counter else ""
    events += _shape_events((times, values), unit, explained, judging)
    events.sort(key=lambda e: -e.score)
    return SeriesSummary(
        labels=labels,
        points=len(raw) + unfinite,
        minimum=float(raw.min()),
        maximum=float(raw.max()),
        mean=mean(raw),
        last=float(raw[-1]),
        trend=("rate " if counter else "") + _trend(values),
        events=tuple(events),
        note=note.strip(),
    )


def _shape_events(
    series: tuple[Floats, Floats], unit: str, explained: Explained, judging: Judging
) -> list[Event]:
    times, values = series
    if len(values) < 3:
        return []
    usual = baseline(values)
    runs = stretch_events(series, usual, unit, (explained, judging))
    spans = [e.span for e in runs if e.span]
    jumps = jump_events(times, values, usual, spans, (unit, explained, judging))
    return runs + jumps


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
