"""What most series of a result do together: said once, not as each series' anomaly.

When most series change at the same steps, the cause is common to them: the end of the data
(the last windows of `rate()` reach past the last sample and come out low), a scrape gap, a
deploy that touched everything, a wave of counter resets. Reporting that in every series would
make every series "stand out" and hide the one that differs. So, across the series of a result
laid on its grid:

- a *move* is a stretch of steps where more than half the series lie `MOVE_Z` usual spreads
  or more from their own median in the same direction (give or take a step), or change by
  `CHANGE_Z` usual changes; or where the typical series (the median over the series of each
  value divided by its series' median) lies far from its usual, most series on that side: at
  the edges of the data, where the windows of `rate()` may be partial, a smaller drop will do;
- a *gap*, a *start*, an *end* is where more than half the series have no data, start or end;
- a *reset wave* is a step (give or take one) where more than half the counters reset.

Each is reported once, with how many series share it. A series that moves with the others is
not charged with the move; one whose move is far larger than theirs (a robust z of `PEAK_Z`
among the series' changes as log ratios, and `OWN_RATIO` times theirs or more) is: the deploy
that slowed every service by 30 % and one by 400 % still names that one. With fewer than
`MIN_SERIES` series nothing is compared: a drop at an edge of the data is reported but does
not stand out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from persai.agent.results.events import NOTHING_EXPLAINED, Explained, Grid, Span
from persai.agent.results.presence import is_counter
from persai.agent.results.query import range_window_s
from persai.agent.results.robust import Floats, median, robust_spread
from persai.agent.results.shared_text import (
    Move,
    describe_move,
    gap_line,
    presence_lines,
    reset_line,
)
from persai.agent.results.table import (
    Bools,
    Judged,
    SeriesInput,
    Table,
    row_median,
    row_scores,
    runs,
)
from persai.agent.results.thresholds import EXTEND_Z, MIN_CHANGE, PEAK_Z

MIN_SERIES = 5
"""Fewer series than this are not compared with each other."""
MOST = 0.5
"""A share of the series larger than this is "most"."""
MOVE_Z = 2.0
CHANGE_Z = 3.0
OWN_RATIO = 2.0
"""A series whose change is this many times the others' (or a fraction as large) has its own."""
_OWN = math.log(OWN_RATIO)
MAX_CELLS = 4_000_000
"""Series x steps beyond which nothing is compared (32 MB of floats)."""


@dataclass(frozen=True)
class Shared:
    """The shared effects as lines of text, and what each series is not charged with."""

    lines: tuple[str, ...]
    explained: tuple[Explained, ...]


def find_shared(
    series: Sequence[SeriesInput], judged: Sequence[Judged], grid: Grid, query: str
) -> Shared:
    """The effects most of `series` (labels, times, values) share on `grid`; `judged`: each
    series' points as its analysis judges them (`analysis.prepare`)."""
    n = len(series)
    steps = round((grid.end - grid.start) / grid.step) + 1 if grid.step > 0 else 0
    counters = any(is_counter(labels.get("__name__", "")) for labels, _, _ in series)
    edge = _edge_steps(query, counters, grid)
    if n < MIN_SERIES or steps < 3 or n * steps > MAX_CELLS:
        # nothing to compare with: the edges of the data are only suspect (see `_suspect`)
        return Shared((), tuple(_suspect(times, grid, edge) for _, times, _ in series))
    table = Table.build(series, judged, grid, steps)
    with warnings.catch_warnings():  # rows without data give NaN medians, which is right
        warnings.simplefilter("ignore", RuntimeWarning)
        return _Finder(table, grid, edge).find()


def _edge_steps(query: str, counters: bool, grid: Grid) -> int:
    """How many steps at each end of the data may come from partial windows: a range function's
    window (`rate(x[5m])`), or Prometheus' 5-minute lookback for a counter read raw."""
    window = range_window_s(query) or (300.0 if counters else 0.0)
    return math.ceil(window / grid.step) + 1 if window and grid.step > 0 else 0


def _suspect(times: Floats, grid: Grid, edge_steps: int) -> Explained:
    """For a series with no others to compare with: the steps at the end of the range (and at
    the start of its data, if that is later than the range's) where a drop may be a partial
    window rather than a change."""
    if not edge_steps or not len(times):
        return NOTHING_EXPLAINED
    width = (edge_steps - 1) * grid.step
    spans = [(grid.end - width, grid.end)]
    if float(times[0]) > grid.start + grid.step / 2:
        spans.append((float(times[0]), float(times[0]) + width))
    return Explained(partial=tuple(spans), slack=grid.step)


class _Finder:
    def __init__(self, table: Table, grid: Grid, edge_steps: int) -> None:
        self.table, self.grid, self.edge_steps = table, grid, edge_steps
        self.n, self.steps = table.values.shape
        self.lines: list[str] = []
        self.levels: list[list[tuple[Span, int]]] = [[] for _ in range(self.n)]
        self.changes: list[list[tuple[Span, int]]] = [[] for _ in range(self.n)]

    def time(self, index: int) -> float:
        return self.grid.start + index * self.grid.step

    def span(self, run: tuple[int, int]) -> Span:
        return self.time(run[0]), self.time(run[1])

    def find(self) -> Shared:
        has = self.table.present.any(axis=1)
        first = np.argmax(self.table.present, axis=1)
        last = self.steps - 1 - np.argmax(self.table.present[:, ::-1], axis=1)
        gaps = self._gaps(has, first, last)
        start = _common(first[has], int(has.sum()))
        end = _common(last[has], int(has.sum()))
        edges = (int(np.median(first[has])), int(np.median(last[has]))) if has.any() else (0, 0)
        start_at = self.time(start[0]) if start and start[0] > 0 else None
        end_at = self.time(end[0]) if end and end[0] < self.steps - 5 else None
        self.lines += presence_lines(
            (start_at, start[1] if start else 0),
            (end_at, end[1] if end else 0),
            int(has.sum()),
        )
        resets = self._resets()
        self._moves(edges)
        explained = tuple(
            Explained(
                tuple(self.levels[i]),
                tuple(self.changes[i]),
                tuple(gaps),
                tuple(resets),
                start_at,
                end_at,
                self.grid.step,
            )
            for i in range(self.n)
        )
        return Shared(tuple(self.lines), explained)

    def _gaps(self, has: Bools, first: NDArray[np.int64], last: NDArray[np.int64]) -> list[Span]:
        index = np.arange(self.steps)
        inside = has[:, None] & (index >= first[:, None]) & (index <= last[:, None])
        missing = (inside & ~self.table.present).sum(axis=0)
        active = inside.sum(axis=0)
        spans = []
        for run in runs((missing > MOST * active) & (active >= MIN_SERIES), join=0):
            spans.append(self.span(run))
            count, points = int(missing[run[0] : run[1] + 1].max()), run[1] - run[0] + 1
            self.lines.append(gap_line(spans[-1], points, (count, int(active[run[0]]))))
        return spans

    def _resets(self) -> list[Span]:
        counters = int(self.table.counters.sum())
        if counters < MIN_SERIES:
            return []
        resets = self.table.resets
        near = resets.copy()
        near[:, 1:] |= resets[:, :-1]
        near[:, :-1] |= resets[:, 1:]
        spans = []
        for run in runs(near.sum(axis=0) > MOST * counters, join=0):
            count = int(resets[:, max(0, run[0] - 1) : run[1] + 2].any(axis=1).sum())
            spans.append(self.span(run))
            self.lines.append(reset_line(self.time(run[0] + 1), (count, counters)))
        return spans

    def _moves(self, edges: tuple[int, int]) -> None:
        values = self.table.values
        z, jumps, center = row_scores(values)
        levels = []
        edge = (edges[0] if edges[0] > 0 else None, edges[1]) if self.edge_steps else None
        off = _typical_off(values, center, edge)
        for sign in (1, -1):
            typical = off[sign]
            moving = (sign * z >= MOVE_Z) | (
                typical[None, :] & (sign * (values - center[:, None]) > 0)
            )
            for run in runs(_most(sign * z >= MOVE_Z, z) | typical):
                levels.append((Move(run, sign, "level", edges), moving))
        changes = [
            (Move(run, sign, "change", edges), sign * jumps >= CHANGE_Z)
            for sign in (1, -1)
            for run in runs(_most(sign * jumps >= CHANGE_Z, jumps), join=0)
        ]
        for move, moving in levels:
            self._move(move, moving, said=True)
        for move, moving in changes:
            # a change that begins or ends a shared stretch is said with it
            said = not any(_near(move.run, level.run) for level, _ in levels)
            self._move(move, moving, said=said)

    def _move(self, move: Move, moving: Bools, *, said: bool) -> None:
        a, b = move.run
        participants = moving[:, a : b + 1].any(axis=1)
        change = self._log_change(move)
        known = ~np.isnan(change)
        if not known.any():
            return
        # a change to or from 0 is infinite: most series falling to 0 is the typical change
        typical = float(np.median(change[known]))
        finite = change[np.isfinite(change)]
        spread = robust_spread(finite, typical) if len(finite) and math.isfinite(typical) else 0
        with np.errstate(invalid="ignore"):  # inf - inf: the same change, not a distance
            own = known & (np.abs(change - typical) >= max(PEAK_Z * spread, _OWN))
        span = self.span(move.run)
        for i in np.flatnonzero(~own).tolist():
            (self.levels if move.kind == "level" else self.changes)[i].append((span, move.sign))
        if not said:
            return
        moved = change[participants & known & ~own]
        size = math.expm1(float(np.median(moved))) if len(moved) else math.nan
        count = int((participants & ~own).sum())
        total = int(np.isfinite(self.table.values[:, a : b + 1]).any(axis=1).sum())
        self.lines.append(
            describe_move(move, (count, total), size, (span, self.edge_steps, self.steps))
        )

    def _log_change(self, move: Move) -> Floats:
        """Each series' change over the move as the log of a ratio (±inf from or to 0; NaN
        where it cannot be compared: no data, a level of 0 throughout, negative values)."""
        a, b = move.run
        values = self.table.values
        if move.kind == "level":
            inside = row_median(values[:, a : b + 1], axis=1)
            outside = values.copy()
            outside[:, a : b + 1] = np.nan
            before = row_median(outside, axis=1)
        else:
            inside = row_median(values[:, b : b + 3], axis=1)
            before = row_median(values[:, max(0, a - 3) : a], axis=1)
        comparable = (inside >= 0) & (before >= 0) & ((inside > 0) | (before > 0))
        with np.errstate(divide="ignore"):
            ratio = np.log(np.where(comparable, inside, np.nan)) - np.log(before)
        return np.where(comparable, ratio, np.nan)


def _typical_off(
    values: Floats, center: Floats, edges: tuple[int | None, int] | None
) -> dict[int, Bools]:
    """For each direction (+1, -1), the steps where the typical series (the median of each
    value over its series' median) lies away from its usual that way, as most series do:
    `PEAK_Z` of its spreads and `MIN_CHANGE` away; or, low at an edge of the data where windows
    may be partial (`edges`: where the data starts, if after the range, and ends), `EXTEND_Z`
    spreads and half as much, in the steps from that edge on.

    Noisy series rarely lie `MOVE_Z` spreads away each, though the typical one does: the end of
    a range of sparse error rates is 28 % low in every series, and within the noise of each.
    """
    positive = center > 0
    none = np.zeros(values.shape[1], dtype=bool)
    if np.count_nonzero(positive) < MIN_SERIES:
        return {1: none, -1: none}
    ratios = values[positive] / center[positive, None]
    known = np.isfinite(ratios).sum(axis=0)
    profile = row_median(ratios, axis=0)
    defined = np.isfinite(profile)
    if np.count_nonzero(defined) < 3:
        return {1: none, -1: none}
    usual = median(profile[defined])
    spread = robust_spread(profile[defined], usual)
    off = {}
    with np.errstate(invalid="ignore"):
        for sign in (1, -1):
            agree = (sign * (ratios - 1) > 0).sum(axis=0) > MOST * known
            typical = defined & agree & (known >= MIN_SERIES)
            far = sign * (profile - usual) >= max(PEAK_Z * spread, MIN_CHANGE)
            off[sign] = typical & far
            if sign < 0 and edges:
                low = typical & (usual - profile >= max(EXTEND_Z * spread, MIN_CHANGE / 2))
                off[sign] |= _from_edges(low, edges)
    return off


def _from_edges(mask: Bools, edges: tuple[int | None, int]) -> Bools:
    """The steps of `mask` that run unbroken from an edge of the data (`edges`: its first
    step if it starts after the range, its last)."""
    kept = np.zeros_like(mask)
    first, last = edges
    i = last
    while i >= 0 and mask[i]:
        kept[i] = True
        i -= 1
    i = first if first is not None else len(mask)
    while i < len(mask) and mask[i]:
        kept[i] = True
        i += 1
    return kept


def _near(one: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two runs of steps overlap or touch (one step apart at most)."""
    return one[0] <= other[1] + 1 and other[0] <= one[1] + 1


def _most(moving: Bools, scores: Floats) -> Bools:
    """The steps where more than half of the series with a score there are `moving`, give or
    take a step (a rolling restart takes half the pods at one scrape and half at the next),
    and at least half as many at that very step."""
    known = np.isfinite(scores).sum(axis=0)
    near = moving.copy()
    near[:, 1:] |= moving[:, :-1]
    near[:, :-1] |= moving[:, 1:]
    now = moving.sum(axis=0)
    return (near.sum(axis=0) > MOST * known) & (now > MOST / 2 * known) & (known >= MIN_SERIES)


def _common(indices: NDArray[np.int64], total: int) -> tuple[int, int] | None:
    """The index (give or take one) most of `indices` share, and how many share it."""
    if not len(indices):
        return None
    values, counts = np.unique(indices, return_counts=True)
    mode = int(values[np.argmax(counts)])
    near = int(np.count_nonzero(np.abs(indices - mode) <= 1))
    return (mode, near) if near > MOST * total and total >= MIN_SERIES else None
