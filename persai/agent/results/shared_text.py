"""How the effects most series share are written: one line each, saying what it likely is."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from persai.agent.results.events import Span
from persai.agent.results.text import format_time

_SHARED_CAUSE = (
    "a cause they share (a deploy, configuration, load upstream), not one series' anomaly"
)


@dataclass(frozen=True)
class Move:
    """A stretch of steps (`run`, grid indices) where most series move in direction `sign`:
    lie away from their median (`level`) or change suddenly (`change`). `edges`: the grid
    indices where most series' data starts and ends."""

    run: tuple[int, int]
    sign: int
    kind: Literal["level", "change"]
    edges: tuple[int, int]


def share(count: int, total: int) -> str:
    """`all 40 series` or `37 of 40 series`."""
    return f"all {total} series" if count >= total else f"{count} of {total} series"


def describe_move(
    move: Move, counts: tuple[int, int], size: float, where: tuple[Span, int, int]
) -> str:
    """`all 40 series are 13% lower at the last step (…): the end of the data, …`.

    `counts`: the series that move and those with data there; `size`: their typical change as
    a share of their level; `where`: the span in time, how many steps at either end of the data
    may be partial windows, and the grid's length.
    """
    (a, b), sign = move.run, move.sign
    span, edge_steps, _ = where
    at_end, at_start = b >= move.edges[1], a <= move.edges[0]
    partial = sign < 0 and 0 < b - a + 1 <= edge_steps
    amount = f" {abs(size):.0%}" if math.isfinite(size) and abs(size) < 100 else ""
    if move.kind == "level":
        verb = f"are{amount} {'higher' if sign > 0 else 'lower'}"
    else:
        verb = f"{'rise' if sign > 0 else 'fall'}{amount}"
    when = _when(move, span, at_start, at_end)
    if at_end and not at_start and partial:
        why = (
            "the end of the data, where the last windows (of rate(), increase(), or a counter's "
            "last samples) are partial: not a change in the series"
        )
    elif at_start and not at_end and partial:
        why = "the start of the data, where the first windows are partial"
    else:
        why = _SHARED_CAUSE
    return f"{share(*counts)} {verb} {when}: {why}"


def _when(move: Move, span: Span, at_start: bool, at_end: bool) -> str:
    (a, b), (first, last) = move.run, span
    if move.kind == "change":
        return f"at {format_time(first)}" + (f" to {format_time(last)}" if b > a else "")
    if at_end and not at_start:
        if a == b:
            return f"at the last step ({format_time(first)})"
        return f"over the last {b - a + 1} steps (from {format_time(first)})"
    return f"from {format_time(first)} to {format_time(last)}"


def presence_lines(
    start: tuple[float | None, int], end: tuple[float | None, int], total: int
) -> list[str]:
    """Lines for a start or an end of the data most series share (None: not shared)."""
    lines = []
    if start[0] is not None:
        lines.append(
            f"{share(start[1], total)} have data only from {format_time(start[0])}: the range "
            "starts before the data"
        )
    if end[0] is not None:
        lines.append(
            f"{share(end[1], total)} have no data after {format_time(end[0])}: the data ends "
            "before the range does (stale or delayed data)"
        )
    return lines


def gap_line(span: Span, points: int, counts: tuple[int, int]) -> str:
    return (
        f"{share(*counts)} have no data from {format_time(span[0])} to {format_time(span[1])} "
        f"({points} points): a gap in collection (scrapes or storage), not in what they measure"
    )


def reset_line(at: float, counts: tuple[int, int]) -> str:
    return (
        f"{share(*counts)} reset their counters at {format_time(at)}: a restart of all of them "
        "(a deploy, a node or process restart), not of one"
    )
