"""Prometheus query tools: what the model uses to look at the user's metrics.

Each result is rendered for a model within the per-result token budget (see
`persai.agent.results`): small results verbatim, large ones summarized, never silently cut.
The helpers here (time windows, calls that add advice to Prometheus's errors, warnings) are
shared with the metadata and rule tools.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from persai.agent import results
from persai.agent.timeparse import parse_duration, parse_time, rfc3339
from persai.agent.tools.base import Tool, ToolContext, ToolError, ToolOutput, tool
from persai.agent.tools.upstream import UpstreamStatusError

DEFAULT_RANGE = timedelta(hours=1)
_ADVICE = {
    "timeout": "the query took too long; narrow it (fewer series, a shorter range, a coarser "
    "step, or aggregate with sum by (...) / topk())",
    "execution": "the query is too expensive; narrow it (fewer series, a shorter range, a "
    "coarser step, or aggregate with sum by (...) / topk())",
    "bad_data": "fix the PromQL or the parameters and try again",
}


def dashboard_window(context: ToolContext) -> tuple[datetime, datetime] | None:
    """The dashboard's time range in UTC, when the investigation has one."""
    span = context.time_range
    if span is None:
        return None
    if span.start is not None and span.end is not None:
        return span.start, span.end
    if span.duration is not None:
        return context.now - parse_duration(span.duration), context.now
    return None


def default_window(context: ToolContext) -> tuple[datetime, datetime]:
    """The dashboard's time range, else the hour before now: what unbounded calls look at."""
    return dashboard_window(context) or (context.now - DEFAULT_RANGE, context.now)


# The Prometheus HTTP API's endpoints that take their parameters form-encoded in a POST body
# (prometheus web/api/v1/api.go registers them for both methods). A datasource configured in the
# Perses UI allows the query endpoints, series and labels by POST only; the others (label values,
# metadata, alerts, rules) exist only as GET.
_POST_ENDPOINTS = frozenset(
    {"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels"}
)


async def prometheus_call(context: ToolContext, path: str, params: dict[str, Any]) -> Any:
    """Call the investigation's Prometheus (by POST where it accepts it, else GET); errors say
    what to do about them."""
    api = context.prometheus
    try:
        if path in _POST_ENDPOINTS:
            body = await api.post_form(path, params)
        else:
            body = await api.get(path, params)
    except UpstreamStatusError as exc:
        advice = _ADVICE.get(exc.error_type or "")
        if advice is None:
            raise
        raise ToolError(f"{exc}; {advice}") from exc
    if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
        raise ToolError(
            f"{context.prometheus.label} did not answer like the Prometheus HTTP API; is it a "
            "Prometheus datasource?"
        )
    return body


def with_warnings(body: Any, budget_tokens: int, render: Callable[[int], str]) -> str:
    """`render(budget)` followed by the warnings Prometheus sent with the result, if any.

    Prometheus warns, for example, when a result was truncated at a limit or a function was
    applied to a metric that does not look like a counter; the model should see that.
    """
    notes = [*(body.get("warnings") or []), *(body.get("infos") or [])]
    if not notes:
        return render(budget_tokens)
    line = results.fit_text(
        "Prometheus warnings: " + "; ".join(map(str, notes)), budget_tokens // 4
    )
    return render(budget_tokens - results.estimate_tokens(line)) + "\n" + line


def _time_error(exc: ValueError) -> ToolError:
    return ToolError(str(exc))


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
        if end is None:
            return default_window(context)
    except ValueError as exc:
        raise _time_error(exc) from exc
    return end - DEFAULT_RANGE, end


def _step_seconds(step: str | None, start: datetime, end: datetime) -> float:
    if not step:
        return results.choose_step(start, end)
    try:
        seconds = parse_duration(step).total_seconds()
    except ValueError as exc:
        raise _time_error(exc) from exc
    if seconds <= 0:
        raise ToolError(f"step must be positive, not {step!r}")
    return seconds


@tool(RangeQueryParams)
async def execute_range_query(context: ToolContext, params: RangeQueryParams) -> ToolOutput:
    """Run a PromQL range query and see how the result series evolve over time. Use it to find
    when something changed and which series stand out. Large results come back summarized (per
    series min/max/mean/last, the series that stand out and when); aggregate with sum by (...) or
    topk() to see fewer series."""
    start, end = resolve_range(context, params)
    # whole seconds: `data` (RFC 3339, seconds) then reports exactly the window queried
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    if start >= end:
        raise ToolError(f"start ({rfc3339(start)}) must be before end ({rfc3339(end)})")
    # From here on the window is known: a failure still reports it (ToolError.data, with the
    # step once that is known), so that a UI can show the call over the window it was for.
    window: dict[str, Any] = {"query": params.query, "start": rfc3339(start), "end": rfc3339(end)}
    try:
        step_s = window["step_s"] = _step_seconds(params.step, start, end)
        sent = {"query": params.query, "start": start.timestamp(), "end": end.timestamp()}
        body = await prometheus_call(context, "/api/v1/query_range", {**sent, "step": step_s})
    except ToolError as exc:
        exc.data = window
        raise
    # analysed once: for the model's summary and for what stood out (the evidence)
    analysis = results.Analysis.of_range(
        body["data"], query=params.query, start=start, end=end, step_s=step_s
    )
    text = with_warnings(body, context.budget_tokens, analysis.render)
    findings = results.matrix_findings(analysis)
    series = len(body["data"].get("result") or [])
    return ToolOutput(text, {**window, "series": series, "findings": findings})


class InstantQueryParams(BaseModel):
    query: str = Field(min_length=1, description="The PromQL expression.")
    time: str | None = Field(
        default=None,
        description=(
            "When to evaluate it: RFC 3339 (UTC), unix seconds or relative (now-10m). "
            "Default: the end of the dashboard's time range, else now."
        ),
    )


def _instant_time(context: ToolContext, text: str | None) -> datetime:
    if text:
        try:
            return parse_time(text, context.now)
        except ValueError as exc:
            raise _time_error(exc) from exc
    window = dashboard_window(context)
    moment = window[1] if window else context.now
    return moment.replace(microsecond=0)


@tool(InstantQueryParams)
async def execute_instant_query(context: ToolContext, params: InstantQueryParams) -> ToolOutput:
    """Evaluate a PromQL expression at one moment and get the value of each series: current
    values, rankings (topk), ratios, counts (count by (...)), what is up or down. Large results
    come back summarized (the values that stand out, the largest, what was left out). Use
    execute_range_query to see how values changed over time."""
    moment = _instant_time(context, params.time)
    body = await prometheus_call(
        context, "/api/v1/query", {"query": params.query, "time": moment.timestamp()}
    )
    text = with_warnings(
        body,
        context.budget_tokens,
        lambda budget: results.render_instant(
            body["data"], query=params.query, time=moment, budget_tokens=budget
        ),
    )
    result = body["data"].get("result")
    kind = body["data"].get("resultType")
    data = {
        "query": params.query,
        "time": rfc3339(moment),
        "result_type": kind,
        "series": len(result or []) if kind in ("vector", "matrix") else None,
        "findings": results.instant_findings(body["data"]),
    }
    return ToolOutput(text, data)


PROMETHEUS_QUERY_TOOLS: tuple[Tool, ...] = (execute_range_query, execute_instant_query)
