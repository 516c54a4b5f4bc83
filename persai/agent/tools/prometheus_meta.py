"""Prometheus discovery tools: metric names, label names and values, series, metadata.

They look at a bounded time window (the dashboard's range, else the last hour), so that a huge
TSDB answers them from its recent blocks only, and render lists within the token budget with a
count of what was left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from persai.agent import results
from persai.agent.timeparse import rfc3339
from persai.agent.tools.base import Tool, ToolContext, ToolOutput, tool
from persai.agent.tools.prometheus import default_window, prometheus_call, with_warnings

LIST_LIMIT = 20_000
"""At most this many names, values or series per call (Prometheus 2.51+ applies it and warns)."""
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_MATCH = Field(
    default=None,
    min_length=1,
    description='A series selector to narrow by, e.g. {job="api"} or http_requests_total.',
)
_SEARCH = Field(
    default=None,
    min_length=1,
    max_length=200,
    description=(
        "A case-insensitive regular expression (RE2) the name or value must contain, e.g. "
        "'latency|duration' or '^node_'."
    ),
)


def _regex_selector(label: str, search: str) -> str:
    """A selector for the series whose `label` contains `search` (case-insensitive).

    Prometheus evaluates it with RE2, in linear time, so no regex from the model can stall us.
    """
    pattern = search.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{{label}=~"(?i).*(?:{pattern}).*"}}'


def _scope(start: datetime, end: datetime, match: str | None, search: str | None) -> str:
    parts = [f"With data between {rfc3339(start)} and {rfc3339(end)}"]
    if match:
        parts.append(f"in series matching {match}")
    if search:
        parts.append(f"containing /{search}/ (case-insensitive)")
    return ", ".join(parts) + "."


def _render(
    context: ToolContext,
    bodies: list[Any],
    scope: str,
    items: Sequence[str] | Sequence[Mapping[str, str]],
    *,
    kind: str,
    empty: str,
    cut: str,
) -> str:
    """The scope line, the list (`empty` says why there is nothing, `cut` how to see what was
    left out), and Prometheus's warnings, within the budget."""
    merged = {
        "warnings": [w for body in bodies for w in body.get("warnings") or []],
        "infos": [i for body in bodies for i in body.get("infos") or []],
    }

    def render(budget: int) -> str:
        rest = budget - results.estimate_tokens(scope)
        hint = cut if items else empty
        listing = results.render_list(items, kind=kind, budget_tokens=rest, hint=hint)
        return f"{scope}\n{listing}" if scope else listing

    return with_warnings(merged, context.budget_tokens, render)


def _window(context: ToolContext) -> tuple[datetime, datetime, dict[str, Any]]:
    start, end = default_window(context)
    return start, end, {"start": start.timestamp(), "end": end.timestamp(), "limit": LIST_LIMIT}


def _data(
    start: datetime, end: datetime, match: str | None, *, count: int, **extra: Any
) -> dict[str, Any]:
    return {"start": rfc3339(start), "end": rfc3339(end), "match": match, "count": count, **extra}


async def _values(
    context: ToolContext, label: str, match: str | None, search: str | None
) -> tuple[list[str], list[Any]]:
    """Values of `label` with data in the window, in series matching `match` and `search`.

    Prometheus unites several `match[]` selectors, so a search within a selector asks twice and
    keeps what both answers hold. Returns the values and the answers (for their warnings).
    """
    window = _window(context)[2]
    selectors = [s for s in (match, search and _regex_selector(label, search)) if s]
    path = f"/api/v1/label/{label}/values"
    calls = [prometheus_call(context, path, {**window, "match[]": s}) for s in selectors]
    if not calls:
        calls = [prometheus_call(context, path, window)]
    bodies = list(await asyncio.gather(*calls))
    sets = [set(body.get("data") or []) for body in bodies]
    return sorted(set.intersection(*sets)), bodies


class ListMetricsParams(BaseModel):
    match: str | None = _MATCH
    search: str | None = _SEARCH


@tool(ListMetricsParams)
async def list_metrics(context: ToolContext, params: ListMetricsParams) -> ToolOutput:
    """List the metric names that have data in the dashboard's time range (else the last hour).
    Use it first to learn what exists instead of guessing names; narrow it with `search` (a
    regex on the name, e.g. 'http.*seconds') and/or `match` (a series selector such as
    {job="api"})."""
    start, end, _ = _window(context)
    names, bodies = await _values(context, "__name__", params.match, params.search)
    text = _render(
        context,
        bodies,
        _scope(start, end, params.match, params.search),
        names,
        kind="metric names",
        empty="Try a broader search, fewer matchers, or a longer time range (list_label_values "
        "shows which jobs and instances exist).",
        cut="Hint: narrow it with `search` (a regex on the name, e.g. '^http_') or `match` "
        '(e.g. {job="..."}).',
    )
    return ToolOutput(text, _data(start, end, params.match, count=len(names), search=params.search))


class ListLabelNamesParams(BaseModel):
    match: str | None = _MATCH


@tool(ListLabelNamesParams)
async def list_label_names(context: ToolContext, params: ListLabelNamesParams) -> ToolOutput:
    """List the label names (job, instance, service, le, ...) of the series with data in the
    dashboard's time range (else the last hour), optionally only of the series matching a
    selector such as http_requests_total or {job="api"}. Use it to learn how a metric can be
    broken down (sum by (label))."""
    start, end, query = _window(context)
    if params.match:
        query["match[]"] = params.match
    body = await prometheus_call(context, "/api/v1/labels", query)
    names = sorted(body.get("data") or [])
    text = _render(
        context,
        [body],
        _scope(start, end, params.match, None),
        names,
        kind="label names",
        empty="No series match in this time range: check the selector (list_metrics lists the "
        "names) or widen the time range.",
        cut="Hint: give `match` to see the labels of fewer series.",
    )
    return ToolOutput(text, _data(start, end, params.match, count=len(names)))


class ListLabelValuesParams(BaseModel):
    label: str = Field(
        pattern=_LABEL_NAME, description="The label name, e.g. job, instance or service."
    )
    match: str | None = _MATCH
    search: str | None = _SEARCH


@tool(ListLabelValuesParams)
async def list_label_values(context: ToolContext, params: ListLabelValuesParams) -> ToolOutput:
    """List the values of one label (e.g. every job, service or pod) in the series with data in
    the dashboard's time range (else the last hour). Narrow it with `match` (a series selector
    such as up{job="api"}) and/or `search` (a regex the value must contain)."""
    start, end, _ = _window(context)
    values, bodies = await _values(context, params.label, params.match, params.search)
    text = _render(
        context,
        bodies,
        _scope(start, end, params.match, params.search),
        values,
        kind=f"values of label {params.label}",
        empty="Check the label name (list_label_names lists them), loosen the matchers or the "
        "search, or widen the time range.",
        cut="Hint: narrow it with `search` (a regex on the value) or `match`; "
        f"`count by ({params.label}) (...)` in execute_instant_query counts series per value.",
    )
    data = _data(start, end, params.match, count=len(values), label=params.label)
    return ToolOutput(text, {**data, "search": params.search})


class FindSeriesParams(BaseModel):
    match: str = Field(
        min_length=1,
        description='A series selector, e.g. up{job="node"} or {__name__=~"http_.*", env="prod"}.',
    )


def _varying(label_sets: list[dict[str, str]], limit: int = 8) -> list[tuple[str, list[str]]]:
    """The labels that tell the series apart, fewest values first, with their sorted values."""
    values: dict[str, set[str]] = {}
    for labels in label_sets:
        for key, value in labels.items():
            values.setdefault(key, set()).add(value)
    varying = [(name, sorted(vals)) for name, vals in values.items() if len(vals) > 1]
    return sorted(varying, key=lambda item: len(item[1]))[:limit]


def _varying_line(varying: list[tuple[str, list[str]]]) -> str:
    parts = [
        f"{name} ({len(vals)} values: {', '.join(vals[:3])}{', …' if len(vals) > 3 else ''})"
        for name, vals in varying
    ]
    return "Labels that vary: " + "; ".join(parts) + "."


@tool(FindSeriesParams)
async def find_series(context: ToolContext, params: FindSeriesParams) -> ToolOutput:
    """Find the series (full label sets) matching a selector that have data in the dashboard's
    time range (else the last hour). Use it to see how many series a metric has and which labels
    tell them apart before querying it."""
    start, end, query = _window(context)
    body = await prometheus_call(context, "/api/v1/series", {**query, "match[]": params.match})
    series = sorted(
        (dict(item) for item in body.get("data") or []), key=lambda s: sorted(s.items())
    )
    varying = _varying(series)
    scope = _scope(start, end, params.match, None)
    cut = "Hint: add matchers to the selector."
    if varying:
        scope += "\n" + _varying_line(varying)
        name, values = varying[0]
        cut = (
            f"Hint: count them per {name} with execute_instant_query, e.g. `count by ({name}) "
            f'({params.match})`, or add a matcher such as {name}="{values[0]}".'
        )
    text = _render(
        context,
        [body],
        scope,
        series,
        kind="series",
        empty="Check the selector: list_metrics and list_label_values show which names and "
        "values exist; or widen the time range.",
        cut=cut,
    )
    return ToolOutput(text, _data(start, end, params.match, count=len(series)))


class MetricMetadataParams(BaseModel):
    metric: str | None = Field(
        default=None,
        min_length=1,
        description="The metric name (exact). Default: every metric Prometheus has metadata for.",
    )


def _metadata_lines(data: Mapping[str, Any]) -> list[str]:
    lines = []
    for name in sorted(data):
        for entry in data[name]:
            unit = f", unit {entry['unit']}" if entry.get("unit") else ""
            help_text = entry.get("help") or "(no help text)"
            lines.append(f"{name} ({entry.get('type', 'unknown')}{unit}): {help_text}")
    return lines


@tool(MetricMetadataParams)
async def get_metric_metadata(context: ToolContext, params: MetricMetadataParams) -> ToolOutput:
    """Get the type (counter, gauge, histogram, summary), unit and help text of a metric, as
    its exporter describes it. Use it to know whether to apply rate() (counters) or
    histogram_quantile() (histograms) and what the values mean."""
    query: dict[str, Any] = {"limit": LIST_LIMIT}
    if params.metric:
        query["metric"] = params.metric
    body = await prometheus_call(context, "/api/v1/metadata", query)
    lines = _metadata_lines(body.get("data") or {})
    text = _render(
        context,
        [body],
        "",
        lines,
        kind=f"metadata entries{' for ' + params.metric if params.metric else ''}",
        empty="Prometheus keeps metadata only for metrics it scrapes itself (none for "
        "remote-written, backfilled or recording-rule series). Judge by the name instead: "
        "_total is a counter (use rate()), _bucket/_sum/_count belong to a histogram or "
        "summary; list_metrics shows which names exist.",
        cut="Hint: give `metric` to see one metric's metadata.",
    )
    return ToolOutput(text, {"metric": params.metric, "count": len(lines)})


PROMETHEUS_META_TOOLS: tuple[Tool, ...] = (
    list_metrics,
    list_label_names,
    list_label_values,
    find_series,
    get_metric_metadata,
)
