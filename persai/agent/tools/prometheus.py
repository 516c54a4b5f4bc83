"""Prometheus tools: what the model uses to look at the user's metrics.

Each result is rendered for a model within the per-result token budget (see
`persai.agent.results`): small results verbatim, large ones summarized, never silently cut.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from persai.agent import results
from persai.agent.timeparse import parse_duration, parse_time, rfc3339
from persai.agent.tools.base import Tool, ToolContext, ToolError, ToolOutput, tool

DEFAULT_RANGE = timedelta(hours=1)


class RangeQueryParams(BaseModel):
    query: str = Field(min_length=1, description="The PromQL expression.")
    start: str | None = Field(
        default=None, description="Start: RFC 3339 (UTC), unix seconds or relative (now-2h)."
    )
    end: str | None = Field(default=None, description="End, like start. Default: now.")
    duration: str | None = Field(
        default=None,
        description="Length of the range ending at `end` when `start` is not given, e.g. 1h, 30m.",
    )
    step: str | None = Field(
        default=None,
        description="Resolution, e.g. 30s or 5m. Default: chosen to keep about 250 points.",
    )


def resolve_range(context: ToolContext, params: RangeQueryParams) -> tuple[datetime, datetime]:
    """The UTC range a query covers: explicit times, else a duration, else the dashboard's."""
    try:
        end = parse_time(params.end, context.now) if params.end else None
        if params.start:
            start = parse_time(params.start, context.now)
            return start, end or context.now
        if params.duration:
            end = end or context.now
            return end - parse_duration(params.duration), end
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    span = context.time_range
    if end is None and span is not None:
        if span.start is not None and span.end is not None:
            return span.start, span.end
        if span.duration is not None:
            return context.now - parse_duration(span.duration), context.now
    end = end or context.now
    return end - DEFAULT_RANGE, end


@tool(RangeQueryParams)
async def execute_range_query(context: ToolContext, params: RangeQueryParams) -> ToolOutput:
    """Run a PromQL range query and see how the result series evolve over time. Use it to find
    when something changed and which series stand out. Large results come back summarized (per
    series min/max/mean/last, the series that stand out and when); aggregate with sum by (...) or
    topk() to see fewer series."""
    start, end = resolve_range(context, params)
    if start >= end:
        raise ToolError(f"start ({rfc3339(start)}) must be before end ({rfc3339(end)})")
    try:
        step_s = (
            parse_duration(params.step).total_seconds()
            if params.step
            else results.choose_step(start, end)
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    body = await context.prometheus.get(
        "/api/v1/query_range",
        {"query": params.query, "start": start.timestamp(), "end": end.timestamp(), "step": step_s},
    )
    text = results.render_range(
        body["data"],
        query=params.query,
        start=start,
        end=end,
        step_s=step_s,
        budget_tokens=context.budget_tokens,
    )
    data = {"query": params.query, "start": rfc3339(start), "end": rfc3339(end), "step_s": step_s}
    return ToolOutput(text, data)


PROMETHEUS_TOOLS: tuple[Tool, ...] = (execute_range_query,)
