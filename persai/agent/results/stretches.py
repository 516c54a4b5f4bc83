"""Stretches of a series far from its median: spikes, dips, and levels since or until a time.

A stretch begins where the change towards it began: the points just before the first one
beyond `EXTEND_Z` spreads often already climb (a ramp, or the five minutes in which
`rate(…[5m])` takes in a step), so its start is where a flat line and then a straight change
fit best (`hinge_onset`), never later than that first point.
"""

from __future__ import annotations

import math

import numpy as np

from persai.agent.results.events import Event, Explained, demoted
from persai.agent.results.query import Judging
from persai.agent.results.robust import (
    Baseline,
    Floats,
    baseline,
    hinge_onset,
    median,
    robust_spread,
)
from persai.agent.results.text import format_time, format_value
from persai.agent.results.thresholds import EXTEND_Z, MAX_SCORE, peak_bar


def stretch_events(
    series: tuple[Floats, Floats],
    usual: Baseline,
    unit: str,
    context: tuple[Explained, Judging],
) -> list[Event]:
    """The two strongest stretches of points far from the median of `series` (times, values)."""
    times, values = series
    explained, judging = context
    center, spread = usual.center, usual.spread
    scores = (values - center) / spread
    bar = peak_bar(len(values), judging.window_points)
    peaks = np.flatnonzero(np.abs(scores) >= bar)
    if not len(peaks):
        return []
    z, at, numbers = scores.tolist(), times.tolist(), values.tolist()
    material = judging.min_change * abs(center)
    highest = _highest_usual(values, bar)
    found: list[Event] = []
    after = 0  # points before this one belong to a stretch already found
    for i in peaks.tolist():
        if i < after or abs(numbers[i] - center) < material:
            continue
        sign = 1 if z[i] > 0 else -1
        first, last = _stretch(z, i, sign)
        peak = max(range(first, last + 1), key=lambda k: sign * z[k])
        earliest, after = after, last + 1
        first, last = _refined(values, (earliest, first, peak, last), usual)
        span, edges = (at[first], at[last]), (first == 0, last == len(z) - 1)
        if (sign > 0 and numbers[peak] <= highest) or explained.stretch(
            span, at[peak], sign, edges
        ):
            continue
        event = _event(at, numbers, (first, peak, last), (center, spread), unit)
        found.append(demoted(event, EXTEND_Z) if explained.partial_drop(span, sign) else event)
    found.sort(key=lambda e: -e.score)
    return found[:2]


def _stretch(z: list[float], i: int, sign: int) -> tuple[int, int]:
    """The first and last index of the stretch around point `i` beyond `EXTEND_Z` that way."""
    first = i
    while first > 0 and sign * z[first - 1] > EXTEND_Z:
        first -= 1
    last = i
    while last + 1 < len(z) and sign * z[last + 1] > EXTEND_Z:
        last += 1
    return first, last


def _refined(values: Floats, run: tuple[int, int, int, int], usual: Baseline) -> tuple[int, int]:
    """The stretch's first and last index moved to where the changes into and (for one that
    starts with the series) out of it began. `run`: the earliest index it may start at, its
    first, most extreme and last index.

    A change runs from where the series is within a tenth of the way to the stretch's extreme
    to where it is nine-tenths there; its start is fitted over it and as many points before.
    """
    earliest, first, peak, last = run
    share = (values - usual.center) / (values[peak] - usual.center)  # 0 usual, 1 the extreme
    if first > earliest:
        there = first + int(np.argmax(share[first : peak + 1] >= 0.9))
        away = np.flatnonzero(share[earliest:there] <= 0.1)
        begin = earliest + int(away[-1]) if len(away) else earliest
        lowest = max(earliest, begin - (there - begin) - 3)
        onset = lowest + _change_start(values[lowest : there + 1])
        # and no earlier than the points already on that side of the usual (noise is not)
        side = np.flatnonzero(share[onset:first] <= 0)
        first = min(first, onset + int(side[-1]) + 1 if len(side) else onset)
    elif first == 0 and last < len(values) - 1:
        back = np.flatnonzero(share[peak:] <= 0.1)
        usual_again = peak + int(back[0]) if len(back) else len(values) - 1
        still = np.flatnonzero(share[peak:usual_again] >= 0.9)
        begin = peak + int(still[-1]) if len(still) else peak
        lowest = max(0, begin - (usual_again - begin) - 3)
        start = lowest + _change_start(values[lowest : usual_again + 1])
        last = max(0, min(last, start - 1))
    return first, last


def _change_start(values: Floats) -> int:
    """The first point of the change that `values` end with: where a hinge fits best
    (`hinge_onset`), or the first point after it more than two spreads of the level before
    it away (a quantile leaps at first and then levels off: a hinge starts early)."""
    onset = hinge_onset(values)
    flat = values[: max(onset, 1)]
    before = median(flat)
    noise = 2 * robust_spread(flat, before) if len(flat) > 2 else 0.0
    sign = 1 if values[-1] > before else -1
    while onset < len(values) - 1 and sign * (values[onset] - before) <= noise:
        onset += 1
    return onset


def _highest_usual(values: Floats, bar: float) -> float:
    """The highest value still usual on the square-root scale, for values that are never
    negative (`inf` where some are).

    Counts of events (and the rates read from them) are skewed: a service with 3 errors in a
    usual 5 minutes has 12 now and then. On the square-root scale a count's noise is the same
    at every level, so an upward stretch must stand out there too (`bar` spreads).
    """
    if float(values.min()) < 0:
        return math.inf
    roots = baseline(np.sqrt(values))
    return float((roots.center + bar * roots.spread) ** 2)


def _event(
    times: list[float],
    values: list[float],
    run: tuple[int, int, int],
    usual: tuple[float, float],
    unit: str,
) -> Event:
    first, peak, last = run
    center, spread = usual
    up = values[peak] > center
    score = min(MAX_SCORE, abs(values[peak] - center) / spread)
    extreme = f"{'peak' if up else 'lowest'} {format_value(values[peak])}{unit}"
    extreme += f" at {format_time(times[peak])}"
    normal = f"usual {format_value(center)} ± {format_value(spread)}"
    word = "high" if up else "low"
    if last == len(values) - 1 and first > 0:
        text = f"{word} since {format_time(times[first])} until the end, {extreme} ({normal})"
    elif first == 0 and last < len(values) - 1:
        text = f"{word} from the start until {format_time(times[last])}, {extreme} ({normal})"
    else:
        kind = "spike" if up else "dip"
        span_text = f"{format_time(times[first])} to {format_time(times[last])}"
        text = f"{kind} from {span_text}, {extreme} ({normal})"
    return Event(score, times[peak], text, (times[first], times[last]))
