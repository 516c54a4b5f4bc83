"""What stood out in a query's result, one short line each: the `findings` of its evidence.

The same analysis the model's summary comes from (`range.Analysis`, made once for both), for
a person reading a notification: the series that stand out, most unusual first, with their
strongest events; then what most series did together. A result where nothing stands out has
no findings.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from persai.agent.results.analysis import PEAK_Z, SeriesSummary
from persai.agent.results.range import Analysis
from persai.agent.results.robust import robust_spread
from persai.agent.results.text import common_labels, format_labels, format_value, without

MAX_FINDINGS = 5
"""Lines per query result."""
MAX_FINDING_CHARS = 240
"""Characters per line (a longer one ends with an ellipsis)."""
_EVENTS_PER_SERIES = 2


def range_findings(
    data: Mapping[str, Any], *, query: str, start: datetime, end: datetime, step_s: float
) -> list[str]:
    """Findings of the `data` of a `/api/v1/query_range` answer (a matrix)."""
    return matrix_findings(
        Analysis.of_range(data, query=query, start=start, end=end, step_s=step_s)
    )


def matrix_findings(analysis: Analysis) -> list[str]:
    """Findings of an analysed matrix (the analysis its rendering made, or makes now)."""
    if not analysis.series:
        return []
    summaries, shared = analysis.summaries()
    standouts = sorted((s for s in summaries if s.score >= PEAK_Z), key=lambda s: -s.score)
    common = common_labels(s.labels for s in summaries)
    lines = [_standout(s, common, len(summaries)) for s in standouts]
    return _bounded([*lines, *shared.lines])


def instant_findings(data: Mapping[str, Any]) -> list[str]:
    """Findings of the `data` of a `/api/v1/query` answer: the values far from the others'."""
    if data.get("resultType") != "vector":
        return []
    samples: list[tuple[dict[str, str], float]] = []
    for item in data.get("result") or []:
        try:
            samples.append((dict(item.get("metric", {})), float(item["value"][1])))
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # a native histogram has no single value to compare
    values = [v for _, v in samples if math.isfinite(v)]
    if len(values) < 3:
        return []
    center = statistics.median(values)
    spread = robust_spread(values, center)
    if spread <= 0:
        return []
    common = common_labels(labels for labels, _ in samples)
    scored = sorted(
        ((abs(v - center) / spread, labels, v) for labels, v in samples if math.isfinite(v)),
        key=lambda item: -item[0],
    )
    lines = [
        f"{_name(labels, common)} is {format_value(v)} (median of all: {format_value(center)})"
        for score, labels, v in scored
        if score >= PEAK_Z
    ]
    return _bounded(lines)


def _standout(summary: SeriesSummary, common: Mapping[str, str], total: int) -> str:
    events = "; ".join(e.text for e in summary.events[:_EVENTS_PER_SERIES])
    return f"{_name(summary.labels, common if total > 1 else {})}: {events}"


def _name(labels: Mapping[str, str], common: Mapping[str, str]) -> str:
    own = without(labels, common)
    return format_labels(own or labels)


def _bounded(lines: list[str]) -> list[str]:
    return [_clip(line.rstrip(".")) for line in lines[:MAX_FINDINGS]]


def _clip(line: str) -> str:
    return line if len(line) <= MAX_FINDING_CHARS else line[: MAX_FINDING_CHARS - 1] + "…"
