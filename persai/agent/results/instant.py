"""Instant query results (vectors, scalars, strings) for a model, within a token budget."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from persai.agent.results.analysis import PEAK_Z, Grid, robust_spread
from persai.agent.results.budget import LineBudget
from persai.agent.results.hints import hints
from persai.agent.results.range import DEFAULT_BUDGET_TOKENS, parse_matrix, render_matrix
from persai.agent.results.text import (
    common_labels,
    format_labels,
    format_time,
    format_value,
    parse_value,
    short_query,
    without,
)
from persai.agent.results.tokens import estimate_tokens, fit_text, fits

Sample = tuple[dict[str, str], float, str]
"""Labels, value, and the value as written (native histograms are written in full)."""


def render_instant(
    data: Mapping[str, Any],
    *,
    query: str,
    time: datetime,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
) -> str:
    """Render the `data` of a `/api/v1/query` answer within `budget_tokens`.

    A vector is listed in full when it fits, largest value first; otherwise the values that
    stand out from the rest come first, then the largest, then what was left out and a hint.
    Scalars and strings are one line. A matrix (a range selector such as `up[5m]`) is rendered
    like a range query.
    """
    kind = data.get("resultType")
    head = [f"Instant query: {short_query(query)}", f"At {format_time(time.timestamp())}."]
    if kind in ("scalar", "string"):
        moment, value = data.get("result") or [time.timestamp(), ""]
        text = f"{kind.capitalize()} at {format_time(float(moment))}: {value}"
        return fit_text("\n".join([head[0], text]), budget_tokens)
    if kind == "matrix":
        return _render_matrix(data, query, time, budget_tokens)
    samples = [_sample(item) for item in data.get("result") or []]
    if not samples:
        advice = (
            "No data: the query matched no series at this time. Check the metric name and labels "
            "(the metric-names and label-values tools list what exists); a range query shows "
            "whether the series stopped earlier."
        )
        return fit_text("\n".join([*head, advice]), budget_tokens)
    samples.sort(key=lambda s: (math.isnan(s[1]), -s[1] if not math.isnan(s[1]) else 0))
    common = common_labels(labels for labels, _, _ in samples)
    full = _listing(head, samples, common)
    if fits(full, budget_tokens):
        return full
    return fit_text(_summary(head, samples, common, query, budget_tokens), budget_tokens)


def _sample(item: Mapping[str, Any]) -> Sample:
    labels = dict(item.get("metric", {}))
    if "histogram" in item:
        histogram = item["histogram"][1]
        count, total = histogram.get("count", "0"), histogram.get("sum", "0")
        return labels, parse_value(count), f"native histogram count={count} sum={total}"
    value = parse_value(item["value"][1])
    return labels, value, format_value(value)


def _render_matrix(data: Mapping[str, Any], query: str, time: datetime, budget: int) -> str:
    series = parse_matrix(data)
    times = sorted({t for s in series for t in s.times.tolist()})
    gaps = [b - a for a, b in itertools.pairwise(times)]
    step = statistics.median(gaps) if gaps else 1.0
    start = times[0] if times else time.timestamp()
    grid = Grid(start, time.timestamp(), step)
    return render_matrix(series, query=query, grid=grid, budget_tokens=budget)


def _line(sample: Sample, common: Mapping[str, str], total: int) -> str:
    labels, _, written = sample
    own = without(labels, common) if total > 1 else labels
    return f"{format_labels(own or labels)} {written}"


def _listing(head: list[str], samples: list[Sample], common: Mapping[str, str]) -> str:
    lines = [*head, f"{len(samples)} series, largest value first."]
    if common and len(samples) > 1:
        lines.append(f"Labels common to all series: {format_labels(common)}")
    lines.extend(_line(s, common, len(samples)) for s in samples)
    return "\n".join(lines)


def _summary(
    head: list[str],
    samples: list[Sample],
    common: Mapping[str, str],
    query: str,
    budget_tokens: int,
) -> str:
    values = [v for _, v, _ in samples if math.isfinite(v)]
    head = [*head, f"{len(samples)} series (summarised)."]
    if common:
        head.append(f"Labels common to all series: {format_labels(common)}")
    if values:
        center = statistics.median(values)
        head.append(
            f"Values: min {format_value(min(values))}, median {format_value(center)}, "
            f"max {format_value(max(values))}, sum {format_value(math.fsum(values))}."
        )
        unusual = _unusual(samples, center, robust_spread(values, center))
    else:
        unusual = []
    rest = [s for s in samples if all(s is not u for u in unusual)]
    top = unusual[0][0] if unusual else None
    context = (samples, common, query, top)
    reserve = estimate_tokens("\n".join([*head, *_footer(context, len(samples))]))
    budget = LineBudget(budget_tokens, reserve)
    title = f"Unusual values ({len(unusual)}, far from the median of all series):"
    shown = budget.add_section(title, [_line(s, common, len(samples)) for s in unusual])
    shown += budget.add_section("Largest first:", [_line(s, common, len(samples)) for s in rest])
    return "\n".join([*head, *budget.lines, *_footer(context, len(samples) - shown)])


def _unusual(samples: list[Sample], center: float, spread: float) -> list[Sample]:
    if spread <= 0:
        return []
    scored = [(abs(s[1] - center) / spread, s) for s in samples if math.isfinite(s[1])]
    flagged = sorted((item for item in scored if item[0] >= PEAK_Z), key=lambda item: -item[0])
    return [s for _, s in flagged]


_Context = tuple[list[Sample], Mapping[str, str], str, Mapping[str, str] | None]


def _footer(context: _Context, omitted: int) -> list[str]:
    samples, common, query, top = context
    if omitted <= 0:
        return []
    label_sets = [labels for labels, _, _ in samples]
    return [
        f"Not shown: {omitted} of {len(samples)} series.",
        *hints(query, label_sets, common, None, top),
    ]
