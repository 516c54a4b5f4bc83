"""Concrete advice on how to ask for less when a result had to be summarised."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from persai.agent.results.analysis import Grid
from persai.agent.results.step import choose_step
from persai.agent.results.text import format_duration, varying_labels, without

_QUERY_IN_HINT = 150
"""Longer queries are written as `<query>` in hints, to keep the budget for data."""


def hints(
    query: str,
    label_sets: Sequence[Mapping[str, str]],
    common: Mapping[str, str],
    grid: Grid | None,
    top: Mapping[str, str] | None,
) -> list[str]:
    """One `Hint:` line: an aggregation, `topk`, matchers for the top series, a coarser step."""
    q = query if len(query) <= _QUERY_IN_HINT else "<query>"
    parts = []
    aggregate = _aggregation_label(label_sets)
    if aggregate:
        label, count = aggregate
        parts.append(f"`sum by ({label}) ({q})` gives {count} series")
    when = "at each step" if grid else ""
    parts.append(f"`topk(5, {q})` keeps the 5 largest {when}".rstrip())
    if top:
        own = {k: v for k, v in without(top, common).items() if k != "__name__"}
        if own:
            matchers = ", ".join(f'{k}="{v}"' for k, v in sorted(own.items()))
            parts.append(f"add matchers such as {matchers} to look at one series")
    if grid and (grid.end - grid.start) / grid.step + 1 > 250:
        start, end = (datetime.fromtimestamp(t, UTC) for t in (grid.start, grid.end))
        parts.append(f"a coarser step such as {format_duration(choose_step(start, end))}")
    return ["Hint: " + "; ".join(parts) + "."]


def _aggregation_label(label_sets: Sequence[Mapping[str, str]]) -> tuple[str, int] | None:
    """The varying label with the fewest values that still groups several series together."""
    varying = varying_labels(list(label_sets))
    candidates = [
        (count, name)
        for name, count in varying.items()
        if 1 < count < len(label_sets) and name != "__name__"
    ]
    if not candidates:
        return None
    count, name = min(candidates)
    return name, count
