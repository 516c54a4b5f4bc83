"""A series that drifts away while the others of its result stay where they were.

A slow ramp that takes most of the range (a leak, a queue filling for an hour) moves a series'
median with it, so no point lies far from the median and the per-series analysis sees nothing.
Against the other series it is plain: compare each series' level at the end of the range with
its level at the start (the medians of the last and first fifths, as a log ratio); a series
whose change lies `PEAK_Z` robust spreads from the others' and is at least `DRIFT_RATIO` times
theirs has drifted. When it began is where a flat line and then a straight rise fit its points
best (`hinge_onset`, over the points up to where the rise is nine-tenths done).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from persai.agent.results.events import Event
from persai.agent.results.robust import Floats, baseline, hinge_onset, median, robust_spread
from persai.agent.results.text import format_time, format_value
from persai.agent.results.thresholds import MAX_SCORE, PEAK_Z

MIN_SERIES = 5
MIN_POINTS = 10
DRIFT_RATIO = 2.0
_LOG_DRIFT = math.log(DRIFT_RATIO)


def drift_events(series: Sequence[tuple[Floats, Floats]]) -> list[Event | None]:
    """For each (times, judged values) series: its drift away from the others, or None."""
    ends = [_ends(values) for _, values in series]
    known = [math.log(b / a) for a, b in (e for e in ends if e) if a > 0 and b > 0]
    found: list[Event | None] = [None] * len(series)
    if len(known) < MIN_SERIES:
        return found
    typical = median(np.array(known))
    spread = robust_spread(known, typical)
    for i, ((times, values), end) in enumerate(zip(series, ends, strict=True)):
        if not end or end[0] <= 0 or end[1] <= 0:
            continue
        distance = abs(math.log(end[1] / end[0]) - typical)
        if distance >= max(PEAK_Z * spread, _LOG_DRIFT) and _beyond_noise(values, end):
            score = min(MAX_SCORE, distance / spread) if spread > 0 else MAX_SCORE
            found[i] = _event(times, values, end, (score, typical))
    return found


def _ends(values: Floats) -> tuple[float, float] | None:
    """The medians of the first and last fifths, for a series of non-negative values."""
    if len(values) < MIN_POINTS or float(values.min()) < 0:
        return None
    fifth = len(values) // 5
    return median(values[:fifth]), median(values[-fifth:])


def _beyond_noise(values: Floats, end: tuple[float, float]) -> bool:
    """Whether the change is far larger than the series' point-to-point noise."""
    return abs(end[1] - end[0]) >= PEAK_Z * baseline(values).usual_change


def _event(
    times: Floats, values: Floats, end: tuple[float, float], figures: tuple[float, float]
) -> Event:
    score, typical = figures
    onset = _onset(values, end)
    change = end[1] / end[0] - 1
    word = "rises" if change > 0 else "falls"
    others = f"{math.expm1(typical):+.0%}"
    text = (
        f"{word} {abs(change):.0%} from about {format_value(end[0])} to "
        f"{format_value(end[1])}, since {format_time(float(times[onset]))}, unlike the other "
        f"series (typically {others} over the range)"
    )
    return Event(score, float(times[onset]), text, (float(times[onset]), float(times[-1])))


def _onset(values: Floats, end: tuple[float, float]) -> int:
    """Where the drift began, fitted over the points up to where it is nine-tenths done."""
    sign = 1 if end[1] > end[0] else -1
    reached = np.flatnonzero(sign * (values - end[0]) >= 0.9 * abs(end[1] - end[0]))
    last = int(reached[0]) if len(reached) else len(values) - 1
    return hinge_onset(values[: last + 1])
