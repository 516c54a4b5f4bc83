"""Sudden changes between neighbouring points, and a change with its reversal (a dip, a spike)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from persai.agent.results.events import Event, Explained, demoted
from persai.agent.results.query import Judging
from persai.agent.results.robust import Baseline, Floats, differences
from persai.agent.results.text import format_time, format_value
from persai.agent.results.thresholds import EXTEND_Z, JUMP_Z, MAX_SCORE


class _Jump(NamedTuple):
    """A sudden change: from the point before index `first` to the point at index `last`
    (one step, or a few neighbouring steps the same way), by `change`, scored `score`."""

    first: int
    last: int
    change: float
    score: float


def jump_events(
    times: Floats,
    values: Floats,
    usual: Baseline,
    spans: list[tuple[float, float]],
    context: tuple[str, Explained, Judging],
) -> list[Event]:
    """Sudden changes between neighbouring points that no reported stretch already explains,
    nor a change most series of the result make at the same step; a change and its reversal
    a while later are one event (a dip or a spike)."""
    unit, explained, judging = context
    diffs = differences(values)
    center, usual_change = usual.diffs_center, usual.usual_change
    material = judging.min_change * abs(usual.center)
    limit = JUMP_Z * usual_change
    sudden = np.flatnonzero((np.abs(diffs - center) >= limit) & (np.abs(diffs) >= material))
    if not len(sudden):
        return []
    step = float(differences(times).min())
    changes, at = diffs.tolist(), times.tolist()
    found = []
    for i in sudden.tolist():
        moment = at[i + 1]
        if any(s - 1.5 * step <= moment <= e + 1.5 * step for s, e in spans):
            continue
        if explained.change(moment, 1 if changes[i] > 0 else -1):
            continue
        score = min(MAX_SCORE, abs(changes[i] - center) / usual_change)
        found.append(_Jump(i + 1, i + 1, changes[i], score))
    numbers = values.tolist()
    events = []
    for group in _paired(_joined(found)):
        event = _jump_event(group, at, numbers, unit)
        sign = 1 if group[0].change > 0 else -1
        partial = len(group) == 1 and explained.partial_drop((event.at, event.at), sign)
        events.append(demoted(event, EXTEND_Z) if partial else event)
    events.sort(key=lambda e: -e.score)
    return events[:2]


def _joined(jumps: list[_Jump]) -> list[_Jump]:
    """The jumps in time order, neighbouring ones the same way (at most two steps apart) as
    one: a 10-minute step of `rate(…[5m])` changes over two points."""
    joined: list[_Jump] = []
    for jump in jumps:
        previous = joined[-1] if joined else None
        if previous and previous.change * jump.change > 0 and jump.first - previous.last <= 2:
            change = previous.change + jump.change
            joined[-1] = _Jump(previous.first, jump.last, change, max(previous.score, jump.score))
        else:
            joined.append(jump)
    return joined


def _paired(jumps: list[_Jump]) -> list[tuple[_Jump, ...]]:
    """A change and the next one reversing it (by half to twice as much) paired."""
    groups: list[tuple[_Jump, ...]] = []
    for jump in jumps:
        previous = groups[-1] if groups else ()
        if len(previous) == 1 and previous[0].change * jump.change < 0:
            ratio = abs(jump.change / previous[0].change)
            if 0.5 <= ratio <= 2:
                groups[-1] = (previous[0], jump)
                continue
        groups.append((jump,))
    return groups


def _jump_event(
    group: tuple[_Jump, ...], times: list[float], values: list[float], unit: str
) -> Event:
    change = group[0]
    before, after = (format_value(values[i]) + unit for i in (change.first - 1, change.last))
    word = "rise" if change.change > 0 else "drop"
    moment = times[change.first]
    text = f"sudden {word} from {before} to {after} at {format_time(moment)}"
    if len(group) == 1:
        return Event(change.score, moment, text)
    back = group[1]
    until = times[back.first - 1]
    kind = "spike" if change.change > 0 else "dip"
    text = (
        f"{kind} from {format_time(moment)} to {format_time(until)}: {text}, back to "
        f"{format_value(values[back.last])}{unit} at {format_time(times[back.first])}"
    )
    return Event(max(change.score, back.score), moment, text, (moment, until))
