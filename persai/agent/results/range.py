"""Range query results (matrices) for a model: verbatim when small, summarised when not."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np

from persai.agent.results.analysis import (
    PEAK_Z,
    Floats,
    Grid,
    SeriesSummary,
    analyse,
    prepare,
)
from persai.agent.results.budget import LineBudget
from persai.agent.results.drift import drift_events
from persai.agent.results.hints import hints
from persai.agent.results.query import judging
from persai.agent.results.shared import Shared, find_shared
from persai.agent.results.text import (
    common_labels,
    format_duration,
    format_labels,
    format_time,
    format_value,
    short_query,
    without,
)
from persai.agent.results.tokens import estimate_tokens, fit_text, fits

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_TOKENS = 2000
"""What one tool result may cost the model, by `estimate_tokens`."""


class Series(NamedTuple):
    """One series of a matrix: its labels, and its points' Unix times and values."""

    labels: dict[str, str]
    times: Floats
    values: Floats


NOTHING_STANDS_OUT = (
    "Nothing stands out: no series has spikes, dips, sudden changes, resets or gaps."
)
NOTHING_ELSE_STANDS_OUT = (
    "Nothing stands out beyond that: no series has spikes, dips, sudden changes, resets or "
    "gaps of its own."
)
OTHERS_TITLE = "Other series (min / max / mean / last, trend), largest first:"
SHARED_TITLE = "Shared by most series (said once, not counted as standing out):"
_SHARED_LINES = 4
"""At most this many shared effects are written (there are rarely more than two)."""


def parse_matrix(data: Mapping[str, Any]) -> list[Series]:
    """The series of a `matrix` result's `data` (values are strings there: "1.5", "NaN")."""
    parsed = []
    for item in data.get("result") or []:
        points = item.get("values", [])
        times = np.array([t for t, _ in points], dtype=np.float64)
        values = np.array([v for _, v in points], dtype=np.float64)
        parsed.append(Series(dict(item.get("metric", {})), times, values))
    return parsed


def render_range(
    data: Mapping[str, Any],
    *,
    query: str,
    start: datetime,
    end: datetime,
    step_s: float,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
) -> str:
    """Render the `data` of a `/api/v1/query_range` answer within `budget_tokens`.

    Small results are written out point by point; larger ones are summarised: common labels
    once, what most series share once (partial windows at the end of the data, a gap, a
    deploy: `shared`), the series that stand out (spikes, dips, sudden changes, counter resets,
    gaps, drifts) ranked by how much and with when, statistics for as many others as fit, what
    was left out and how to narrow the query. The result always fits the budget by
    `estimate_tokens`.
    """
    grid = Grid(start.timestamp(), end.timestamp(), step_s)
    return render_matrix(parse_matrix(data), query=query, grid=grid, budget_tokens=budget_tokens)


class Analysis:
    """One matrix's analysis, made once (when needed) for its rendering and its findings."""

    def __init__(self, series: list[Series], query: str, grid: Grid) -> None:
        self.series, self.query, self.grid = series, query, grid
        self._made: tuple[list[SeriesSummary], Shared] | None = None

    @classmethod
    def of_range(
        cls, data: Mapping[str, Any], *, query: str, start: datetime, end: datetime, step_s: float
    ) -> Analysis:
        """Of the `data` of a `/api/v1/query_range` answer."""
        return cls(parse_matrix(data), query, Grid(start.timestamp(), end.timestamp(), step_s))

    def summaries(self) -> tuple[list[SeriesSummary], Shared]:
        if self._made is None:
            self._made = summarise(self.series, self.query, self.grid)
        return self._made

    def render(self, budget_tokens: int) -> str:
        return render_matrix(
            self.series,
            query=self.query,
            grid=self.grid,
            budget_tokens=budget_tokens,
            analysis=self,
        )


def render_matrix(
    series: list[Series],
    *,
    query: str,
    grid: Grid,
    budget_tokens: int,
    analysis: Analysis | None = None,
) -> str:
    """Render parsed matrix series evaluated on `grid` (see `render_range`); `analysis`: theirs,
    when it is wanted for more than this (`Analysis`)."""
    span = f"from {format_time(grid.start)} to {format_time(grid.end)}"
    head = [
        f"Range query: {short_query(query)}",
        f"Range {span}, step {format_duration(grid.step)}.",
    ]
    if not series:
        advice = (
            "No data: the query matched no series in this range. Check the metric name and labels "
            "(the metric-names and label-values tools list what exists), or widen the time range."
        )
        return fit_text("\n".join([*head, advice]), budget_tokens)
    # A point costs at least 14 tokens written out (time 13, value 1): skip hopeless attempts.
    if _points(series) * 14 <= budget_tokens:
        verbatim = _verbatim(head, series)
        if fits(verbatim, budget_tokens):
            return verbatim
    summaries, shared = (analysis or Analysis(series, query, grid)).summaries()
    logger.debug("summarising %d series for a budget of %d tokens", len(series), budget_tokens)
    shared_lines = [f"- {line}." for line in shared.lines[:_SHARED_LINES]]
    text = _summary(head, summaries, (query, grid, shared_lines), budget_tokens)
    return fit_text(text, budget_tokens)


def summarise(series: list[Series], query: str, grid: Grid) -> tuple[list[SeriesSummary], Shared]:
    """Each series' summary (in the order of `series`) and what most of them share."""
    judged = [prepare(s.labels, s.times, s.values) for s in series]
    shared = find_shared(series, judged, grid, query)
    how = judging(query, grid.step)
    summaries = [
        analyse(s.labels, s.times, s.values, grid, explained, how)
        for s, explained in zip(series, shared.explained, strict=True)
    ]
    drifts = drift_events(judged)
    for i, drift in enumerate(drifts):
        if drift and not summaries[i].events:  # what the series' own analysis could not see
            summaries[i] = replace(summaries[i], events=(drift,))
    return summaries, shared


def _verbatim(head: list[str], series: list[Series]) -> str:
    common = common_labels(s.labels for s in series)
    lines = [*head, f"{len(series)} series, {_points(series)} points."]
    if common and len(series) > 1:
        lines.append(f"Labels common to all series: {format_labels(common)}")
    for labels, times, values in series:
        lines.append(format_labels(without(labels, common) if len(series) > 1 else labels) + ":")
        pairs = zip(times.tolist(), values.tolist(), strict=True)
        lines.extend(f"  {format_time(t)} {format_value(v)}" for t, v in pairs)
    return "\n".join(lines)


def _points(series: Sequence[Series]) -> int:
    return sum(len(s.times) for s in series)


def _summary(
    head: list[str],
    summaries: list[SeriesSummary],
    context: tuple[str, Grid, list[str]],
    budget_tokens: int,
) -> str:
    """`context`: the query, the grid and the lines of what most series share."""
    query, grid, shared_lines = context
    common = common_labels(s.labels for s in summaries)
    total = len(summaries)
    head = [*head, f"{total} series, {sum(s.points for s in summaries)} points (summarised)."]
    if common and total > 1:
        head.append(f"Labels common to all series: {format_labels(common)}")
    head.append(_overall(summaries, common))
    ranked = sorted(summaries, key=lambda s: -s.score)
    standouts = [s for s in ranked if s.score >= PEAK_Z]
    others = sorted((s for s in ranked if s.score < PEAK_Z), key=lambda s: -s.maximum)
    title = f"Stand out ({len(standouts)} of {total} series, most unusual first):"
    standout_lines = [_standout_line(s, common) for s in standouts]
    other_lines = _other_lines(others, common)
    other_texts = [line for line, _ in other_lines]
    nothing = NOTHING_ELSE_STANDS_OUT if shared_lines else NOTHING_STANDS_OUT
    shown = _section(title, standout_lines) if standouts else [nothing]
    shared = _section(SHARED_TITLE, shared_lines)
    whole = "\n".join([*head, *shared, *shown, *_section(OTHERS_TITLE, other_texts)])
    if len(whole) <= budget_tokens:  # short enough to fit without counting (see `fits`)
        return whole
    hinted = (query, grid, common)
    reserve = estimate_tokens("\n".join(_footer(summaries, total, total, hinted)))
    budget = LineBudget(budget_tokens, reserve + estimate_tokens("\n".join(head)))
    budget.add_section(SHARED_TITLE, shared_lines)
    shown_standouts = budget.add_section(title, standout_lines)
    if not standouts:
        budget.add(nothing)
    added = budget.add_section(OTHERS_TITLE, other_texts)
    shown_others = sum(count for _, count in other_lines[:added])
    omitted = total - shown_standouts - shown_others
    footer = _footer(summaries, omitted, len(standouts) - shown_standouts, hinted)
    return "\n".join([*head, *budget.lines, *footer])


def _section(title: str, lines: list[str]) -> list[str]:
    """A title and its lines, as a budget shows them when all fit (nothing without lines)."""
    return [title, *lines] if lines else []


def _overall(summaries: list[SeriesSummary], common: Mapping[str, str]) -> str:
    with_numbers = [s for s in summaries if s.maximum == s.maximum]
    if not with_numbers:
        return "No series has a numeric value."
    high = max(with_numbers, key=lambda s: s.maximum)
    low = min(with_numbers, key=lambda s: s.minimum)
    return (
        f"Overall max {format_value(high.maximum)} in {_selector(high, common)}; "
        f"min {format_value(low.minimum)} in {_selector(low, common)}."
    )


def _selector(summary: SeriesSummary, common: Mapping[str, str]) -> str:
    own = without(summary.labels, common)
    return format_labels(own if own else summary.labels)


def _stats(summary: SeriesSummary) -> str:
    values = (summary.minimum, summary.maximum, summary.mean, summary.last)
    return " / ".join(format_value(v) for v in values) + f", {summary.trend}"


def _standout_line(summary: SeriesSummary, common: Mapping[str, str]) -> str:
    events = "; ".join(e.text for e in summary.events[:3])
    note = f" {summary.note}" if summary.note else ""
    stats = f"min / max / mean / last {_stats(summary)}"
    return f"- {_selector(summary, common)}: {events}. {stats}.{note}"


def _other_lines(others: list[SeriesSummary], common: Mapping[str, str]) -> list[tuple[str, int]]:
    """A line per series, except that three or more with the very same figures share one.

    Returns (line, how many series it covers) pairs, in the order of `others`.
    """
    alike: dict[str, list[SeriesSummary]] = {}
    for summary in others:
        if not summary.events and not summary.note:
            alike.setdefault(_stats(summary), []).append(summary)
    lines, done = [], set()
    for summary in others:
        group = alike.get(_stats(summary), []) if not summary.events and not summary.note else []
        if len(group) < 3:
            lines.append((_other_line(summary, common), 1))
        elif _stats(summary) not in done:
            done.add(_stats(summary))
            names = ", ".join(_selector(s, common) for s in group[:3])
            text = (
                f"- {len(group)} series alike, {names} and {len(group) - 3} more: {_stats(summary)}"
            )
            lines.append((text, len(group)))
    return lines


def _other_line(summary: SeriesSummary, common: Mapping[str, str]) -> str:
    minor = f" ({summary.events[0].text})" if summary.events else ""
    note = f" {summary.note}" if summary.note else ""
    return f"- {_selector(summary, common)}: {_stats(summary)}{minor}{note}"


def _footer(
    summaries: list[SeriesSummary],
    omitted: int,
    omitted_standouts: int,
    context: tuple[str, Grid, Mapping[str, str]],
) -> list[str]:
    query, grid, common = context
    if omitted <= 0:
        return []
    flagged = f", {omitted_standouts} of which stand out" if omitted_standouts else ""
    lines = [f"Not shown: {omitted} of {len(summaries)} series{flagged}."]
    top = max(summaries, key=lambda s: s.score)
    top_labels = top.labels if top.score >= PEAK_Z else None
    lines.extend(hints(query, [s.labels for s in summaries], common, grid, top_labels))
    return lines
