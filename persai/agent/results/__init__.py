"""Prometheus HTTP API results rendered for a model, each within a budget of tokens.

Small results are written out; large ones are summarised (per-series statistics, the series
that stand out and when, what was left out and how to ask for less). Nothing is cut silently.
What most series share (the partial windows at the end of the data, a scrape gap, a deploy, a
wave of restarts) is said once and makes no series stand out (`shared`).

    text = render_range(body["data"], query=q, start=start, end=end, step_s=30.0)
"""

from persai.agent.results.analysis import Event, Grid, SeriesSummary, analyse
from persai.agent.results.findings import instant_findings, matrix_findings, range_findings
from persai.agent.results.instant import render_instant
from persai.agent.results.lists import render_list
from persai.agent.results.range import (
    DEFAULT_BUDGET_TOKENS,
    Analysis,
    render_matrix,
    render_range,
)
from persai.agent.results.step import choose_step
from persai.agent.results.text import format_duration, format_labels, format_time, format_value
from persai.agent.results.tokens import estimate_tokens, fit_text

__all__ = [
    "DEFAULT_BUDGET_TOKENS",
    "Analysis",
    "Event",
    "Grid",
    "SeriesSummary",
    "analyse",
    "choose_step",
    "estimate_tokens",
    "fit_text",
    "format_duration",
    "format_labels",
    "format_time",
    "format_value",
    "instant_findings",
    "matrix_findings",
    "range_findings",
    "render_instant",
    "render_list",
    "render_matrix",
    "render_range",
]
