"""PersAI's Prometheus metrics: what an operator watches, in the API and in every worker.

The API serves its registry at /metrics; each worker serves its own on
PERSAI_WORKER_METRICS_PORT, so that every worker of a pool can be scraped.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

_SLOW = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

INVESTIGATIONS = Counter(
    "persai_investigations", "Investigations finished, by outcome.", ["outcome"]
)
QUEUE_WAIT = Histogram(
    "persai_queue_wait_seconds", "From submission to a worker starting the job.", buckets=_FAST
)
INVESTIGATION_DURATION = Histogram(
    "persai_investigation_duration_seconds",
    "From a worker starting the job to its end, by outcome.",
    ["outcome"],
    buckets=_SLOW,
)
TOOL_CALLS = Counter("persai_tool_calls", "Tool calls, by tool and outcome.", ["tool", "outcome"])
TOOL_DURATION = Histogram(
    "persai_tool_call_duration_seconds", "Duration of tool calls, by tool.", ["tool"], buckets=_FAST
)
MODEL_CALLS = Counter("persai_model_calls", "Model calls, by model.", ["model"])
MODEL_TOKENS = Counter(
    "persai_model_tokens", "Model tokens, by model and direction.", ["model", "direction"]
)
MODEL_DURATION = Histogram(
    "persai_model_call_duration_seconds", "Duration of model calls.", ["model"], buckets=_SLOW
)
AUTH_CACHE = Counter(
    "persai_auth_cache",
    "Token checks answered from the cache (hit) or by Perses (miss).",
    ["result"],
)
PERSES_REQUESTS = Counter(
    "persai_perses_requests", "Requests PersAI made to Perses, by endpoint and status.",
    ["endpoint", "status"],
)  # fmt: skip
ALERT_NOTIFICATIONS = Counter(
    "persai_alert_notifications",
    "Attempts to deliver an alert investigation's notification, by destination and outcome "
    "(delivered, failed, dropped).",
    ["destination", "outcome"],
)


def serve(port: int, host: str | None = None) -> None:
    """Serve this process's metrics on host:port (a worker's own endpoint; host None: every
    interface); port 0 disables."""
    if port:
        start_http_server(port, addr=host or "0.0.0.0")  # noqa: S104 (scraped from elsewhere)
