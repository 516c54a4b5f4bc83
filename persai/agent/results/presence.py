"""Whether a series has its data: missing points, a late start or early end, counter resets.

Also how a counter's values become the per-second rate its analysis looks at.
"""

from __future__ import annotations

import itertools

import numpy as np

from persai.agent.results.events import Event, Explained, Grid
from persai.agent.results.robust import Floats, differences
from persai.agent.results.text import format_time

COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def is_counter(name: str) -> bool:
    """Whether a metric name is a counter's (so its rate is what moves)."""
    return name.endswith(COUNTER_SUFFIXES)


def as_rate(times: Floats, values: Floats) -> tuple[Floats, Floats]:
    """Per-second increase between neighbouring points; a reset counts from zero, like rate()."""
    later = values[1:]
    increase = np.where(later >= values[:-1], differences(values), later)
    return times[1:], increase / np.maximum(differences(times), 1e-9)


def reset_indices(values: Floats) -> list[int]:
    """Where a counter went down: the index of the first point after each reset."""
    return (np.flatnonzero(values[1:] < values[:-1]) + 1).tolist()


def reset_events(times: Floats, values: Floats, explained: Explained) -> list[Event]:
    """The series' own counter resets (a wave of resets of most series is not its own)."""
    resets = [i for i in reset_indices(values) if not explained.reset(float(times[i]))]
    if not resets:
        return []
    first = resets[0]
    what = f"{values[first - 1]:.6g} → {values[first]:.6g}"
    more = f" ({len(resets)} resets in all)" if len(resets) > 1 else ""
    text = f"counter reset at {format_time(float(times[first]))} ({what}){more}"
    return [Event(30.0, float(times[first]), text)]


def gap_events(times: Floats, grid: Grid, explained: Explained) -> tuple[list[Event], str]:
    """Missing points inside the series, and whether it starts late or ends early."""
    if not len(times) or grid.step <= 0:
        return [], ""
    events = []
    # a point is missing where neighbours lie 1.5 steps apart or more: most series have none
    gapless = len(times) < 2 or float(differences(times).max()) < 1.25 * grid.step
    for a, b in [] if gapless else itertools.pairwise(times.tolist()):
        missing = round((b - a) / grid.step) - 1
        if missing >= 1 and not explained.gap((a + grid.step, b - grid.step)):
            span = f"{format_time(a + grid.step)} to {format_time(b - grid.step)}"
            text = f"no data from {span} ({missing} points missing)"
            events.append(Event(8.0 + min(missing, 20) / 10, a + grid.step, text, (a, b)))
    note = ""
    first, last = float(times[0]), float(times[-1])
    if first > grid.start + grid.step / 2 and not explained.starts(first):
        note += f"Data only from {format_time(first)}."
    if last < grid.end - 5 * grid.step and not explained.ends(last):
        events.append(Event(7.0, last, f"no data after {format_time(last)}"))
    return events, note
