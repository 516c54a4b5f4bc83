"""Alertmanager's webhook as the unit tests of the alert receiver post it: a receiver's
config with its token, alerts and their payload (the shape of Alertmanager 0.25's webhook)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

TOKEN = "alertmanager-token-0123456789"
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
EXPR = 'sum(rate(http_requests_total{code=~"5.."}[5m])) by (service) > 1'


def write_config(
    directory: Path, datasource: str = "/proxy/globaldatasources/prom", **receiver: Any
) -> Path:
    (directory / "token").write_text(TOKEN + "\n")
    lines = [
        "receivers:",
        "  - name: oncall",
        f"    token_file: {directory / 'token'}",
        f"    datasource: {datasource}",
        *(f"    {key}: {value}" for key, value in receiver.items()),
    ]
    path = directory / "alerts.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def alert(fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "CheckoutErrors", "service": "checkout-api", **labels},
        "annotations": {"summary": "checkout 5xx above 1/s"},
        "startsAt": STARTED.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?"
        + urlencode({"g0.expr": EXPR, "g0.tab": "1"}),
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], status: str = "firing", group: str = "g1") -> dict[str, Any]:
    """What Alertmanager 0.25 posts (notify/webhook/webhook.go)."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="CheckoutErrors", group="{group}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "oncall",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors", "service": "checkout-api"},
        "commonAnnotations": {"summary": "checkout 5xx above 1/s"},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
