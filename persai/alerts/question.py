"""The question an alert group asks, and the window its investigation looks at.

Label and annotation values are untrusted text (anyone who can write an alerting rule, or push
a label through a metric, writes them): each is shortened to `MAX_QUOTED_CHARS` and written as
a JSON string, so it can neither end the sentence it stands in nor pass for PersAI's words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from persai.alerts.payload import Alert, Notification
from persai.alerts.receivers import DEFAULT_TEMPLATE, Receiver
from persai.jobs import TimeRange, utcnow
from persai.timebounds import EARLIEST

MAX_QUOTED_CHARS = 300
MAX_EXPR_CHARS = 2000
MAX_LISTED_ALERTS = 10
"""Alerts listed one by one in a question; the rest are counted."""


def quoted(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """`text` as a JSON string literal, at most `limit` characters of it."""
    return json.dumps(text if len(text) <= limit else text[: limit - 1] + "…")


def expression(alert: Alert) -> str | None:
    """The alerting rule's PromQL: Prometheus's `generatorURL` carries it as `g0.expr`
    (web/ui: `/graph?g0.expr=...&g0.tab=1`)."""
    try:
        values = parse_qs(urlsplit(alert.generator_url).query).get("g0.expr")
    except ValueError:
        return None
    return values[0][:MAX_EXPR_CHARS] if values and values[0].strip() else None


def _labels(labels: Mapping[str, str]) -> str:
    pairs = [f"{quoted(k, 128)}: {quoted(v)}" for k, v in sorted(labels.items())]
    return "{" + ", ".join(pairs) + "}" if pairs else "{}"


def question(notification: Notification, receiver: Receiver, alerts: list[Alert]) -> str:
    """The question for `alerts` (the group's firing ones, or its new ones for a follow-up)."""
    first = min(alerts, key=lambda a: a.starts_at)
    annotations = notification.common_annotations or first.annotations
    expr = next((e for e in map(expression, alerts) if e), None)
    listed = [f"- {_labels(a.labels)} since {_utc(a.starts_at)}" for a in alerts]
    more = len(alerts) - MAX_LISTED_ALERTS
    lines = listed[:MAX_LISTED_ALERTS] + ([f"- and {more} more"] if more > 0 else [])
    fields = {
        "alertname": quoted(notification.alertname, 128),
        "status": notification.status,
        "count": str(len(alerts)),
        "starts_at": _utc(first.starts_at),
        "labels": _labels(notification.common_labels or first.labels),
        "summary": quoted(annotations.get("summary", "")),
        "description": quoted(annotations.get("description", "")),
        "expr": quoted(expr, MAX_EXPR_CHARS) if expr else "(not given)",
        "alerts": "\n".join(lines),
    }
    return (receiver.question_template or DEFAULT_TEMPLATE).format(**fields)


def follow_up(notification: Notification, receiver: Receiver, new: list[Alert]) -> str:
    """The follow-up question when `new` alerts joined a group already investigated."""
    head = (
        f"{len(new)} more alert(s) joined the group of alert {quoted(notification.alertname, 128)}:"
    )
    return head + "\n" + question(notification, receiver, new)


def window(alerts: list[Alert], receiver: Receiver, now: datetime | None = None) -> TimeRange:
    """From `lookback_s` before the first alert started to now (at least 15 minutes after it)."""
    now = now or utcnow()
    first = min(a.starts_at for a in alerts)
    start = max(EARLIEST, min(first, now) - timedelta(seconds=receiver.lookback_s))
    end = max(now, min(first, now) + timedelta(minutes=15))
    return TimeRange(start=start.replace(microsecond=0), end=end.replace(microsecond=0))


def _utc(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
