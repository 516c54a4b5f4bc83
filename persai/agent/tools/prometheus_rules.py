"""Prometheus alerting tools: the alerts firing now, and the alerting and recording rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from persai.agent import results
from persai.agent.timeparse import rfc3339
from persai.agent.tools.base import Tool, ToolContext, ToolError, ToolOutput, tool
from persai.agent.tools.prometheus import prometheus_call, with_warnings
from persai.agent.tools.upstream import EndpointNotAllowed

_EXPRESSION_CHARS = 300
"""Longer rule expressions are shortened (saying how much was left out) to keep room for more."""


def _time(text: str | None) -> str:
    """Prometheus's RFC 3339 with nanoseconds, written the way every tool writes times."""
    if not text:
        return "?"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return results.format_time(round(moment.timestamp()))


def _value(text: str | None) -> str:
    try:
        return results.format_value(float(text or "nan"))
    except ValueError:
        return str(text)


def _labels(labels: Mapping[str, str], drop: str) -> str:
    own = {k: v for k, v in labels.items() if k != drop}
    return results.format_labels(own) if own else ""


class ListAlertsParams(BaseModel):
    state: Literal["firing", "pending"] | None = Field(
        default=None, description="Only alerts in this state. Default: firing and pending."
    )


def _alert_line(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels") or {}
    name = labels.get("alertname", "?")
    annotations = alert.get("annotations") or {}
    note = annotations.get("summary") or annotations.get("description") or ""
    line = f"{name}{_labels(labels, 'alertname')} {alert.get('state', '?')}"
    if alert.get("activeAt"):
        line += f" since {_time(alert.get('activeAt'))}"
    if alert.get("value") is not None:
        line += f", value {_value(alert.get('value'))}"
    return f"{line}: {results.fit_text(note, 60)}" if note else line


_FROM_SERIES = (
    "Read from the ALERTS series: the Perses configuration of this datasource does not allow "
    "/api/v1/alerts, so annotations and the values that triggered the alerts are not shown."
)


_SERIES_ONLY = frozenset({"__name__", "alertstate"})
"""Labels of the ALERTS series that are not the alert's own."""


def _since(value: Any) -> str | None:
    try:
        return rfc3339(datetime.fromtimestamp(float(value), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


async def _alerts_from_series(context: ToolContext) -> tuple[list[dict[str, Any]], Any]:
    """The active alerts as Prometheus records them in its `ALERTS` series (one per alert,
    labelled `alertstate`) and `ALERTS_FOR_STATE` (its value: since when the alert is active),
    read through the query endpoint: what a datasource that refuses /api/v1/alerts still shows.
    Returns the alerts in the shape of /api/v1/alerts and the answer (for its warnings)."""
    moment = {"time": context.now.timestamp()}
    body = await prometheus_call(context, "/api/v1/query", {"query": "ALERTS", **moment})
    since_body = await prometheus_call(
        context, "/api/v1/query", {"query": "ALERTS_FOR_STATE", **moment}
    )

    def key(metric: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in metric.items() if k not in _SERIES_ONLY))

    since = {
        key(item.get("metric") or {}): (item.get("value") or [None, None])[1]
        for item in since_body["data"].get("result") or []
    }
    alerts = []
    for item in body["data"].get("result") or []:
        metric = item.get("metric") or {}
        active = since.get(key(metric))
        alerts.append(
            {
                "labels": dict(key(metric)),
                "state": metric.get("alertstate", "?"),
                "activeAt": _since(active),
            }
        )
    return alerts, body


@tool(ListAlertsParams)
async def list_alerts(context: ToolContext, params: ListAlertsParams) -> ToolOutput:
    """List the alerts that are firing or pending now in this Prometheus (from its alerting
    rules), with their labels, since when and the value that triggered them. A good first look
    at what is wrong right now."""
    note = None
    try:
        body = await prometheus_call(context, "/api/v1/alerts", {})
        found = (body.get("data") or {}).get("alerts") or []
    except EndpointNotAllowed:
        found, body = await _alerts_from_series(context)
        note = _FROM_SERIES
    alerts = [
        alert for alert in found if params.state is None or alert.get("state") == params.state
    ]
    # firing before pending, then the longest-active first
    alerts.sort(key=lambda a: (a.get("state") != "firing", a.get("activeAt") or ""))
    lines = [_alert_line(alert) for alert in alerts]
    hint = (
        "Nothing is alerting in this Prometheus now (list_rules shows which alerts are defined; "
        "alerts of other Prometheus servers are not seen here)."
    )
    kind = f"{params.state} alerts" if params.state else "alerts (firing or pending)"
    cut = (
        'Hint: state="firing" lists only firing alerts; execute_instant_query with '
        '`count by (alertname) (ALERTS{alertstate="firing"})` counts them by name.'
    )
    text = with_warnings(
        body,
        context.budget_tokens,
        lambda budget: results.render_list(
            lines, kind=kind, budget_tokens=budget, hint=cut if lines else hint
        ),
    )
    if note:
        text = f"{note}\n{text}"
    firing = sum(1 for alert in alerts if alert.get("state") == "firing")
    data = {"state": params.state, "count": len(alerts), "firing": firing}
    return ToolOutput(text, {**data, "time": rfc3339(context.now)})


class ListRulesParams(BaseModel):
    type: Literal["alert", "record"] | None = Field(
        default=None,
        description="alert for alerting rules, record for recording rules. Default: both.",
    )


def _rule_line(group: str, rule: Mapping[str, Any]) -> str:
    query = str(rule.get("query", ""))
    if len(query) > _EXPRESSION_CHARS:
        query = f"{query[:_EXPRESSION_CHARS]}… ({len(query) - _EXPRESSION_CHARS} more characters)"
    health = rule.get("health", "unknown")
    problem = f", error: {rule.get('lastError')}" if rule.get("lastError") else ""
    if rule.get("type") == "alerting":
        active = len(rule.get("alerts") or [])
        hold = (
            f" for {results.format_duration(float(rule['duration']))}"
            if rule.get("duration")
            else ""
        )
        return (
            f"alert {rule.get('name')} (group {group}): {query}{hold}; "
            f"{rule.get('state', 'inactive')}, {active} active; health {health}{problem}"
        )
    return f"record {rule.get('name')} (group {group}): {query}; health {health}{problem}"


@tool(ListRulesParams)
async def list_rules(context: ToolContext, params: ListRulesParams) -> ToolOutput:
    """List this Prometheus's alerting rules (with their expression, state and how many alerts
    are active) and recording rules (the series they precompute, often cheaper to query than
    the raw expression), with their health and last error."""
    query = {"type": params.type} if params.type else {}
    try:
        body = await prometheus_call(context, "/api/v1/rules", query)
    except EndpointNotAllowed as exc:
        raise ToolError(
            f"{exc}. The rules cannot be read through it; what still works: list_alerts (it "
            "reads the ALERTS series instead), the query tools, and the metric, label and "
            "series tools."
        ) from exc
    wanted = {"alert": "alerting", "record": "recording"}.get(params.type or "")
    lines = [
        _rule_line(str(group.get("name", "?")), rule)
        for group in (body.get("data") or {}).get("groups") or []
        for rule in group.get("rules") or []
        if wanted is None or rule.get("type") == wanted
    ]
    kind = {"alert": "alerting rules", "record": "recording rules"}.get(params.type or "", "rules")
    hint = "This Prometheus evaluates no such rules (its configuration loads no rule files)."
    cut = 'Hint: type="alert" or type="record" lists one kind of rule.'
    text = with_warnings(
        body,
        context.budget_tokens,
        lambda budget: results.render_list(
            lines, kind=kind, budget_tokens=budget, hint=cut if lines else hint
        ),
    )
    return ToolOutput(text, {"type": params.type, "count": len(lines)})


PROMETHEUS_RULE_TOOLS: tuple[Tool, ...] = (list_alerts, list_rules)
