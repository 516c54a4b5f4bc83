"""What the integration tests ask PersAI's API, and how they read its answers."""

from __future__ import annotations

import httpx

DATASOURCE = "/proxy/globaldatasources/prom"
"""The shared Prometheus, as the integration tests configure it (`persai_env`)."""
FAST_RECOVERY = {"PERSAI_HEARTBEAT_INTERVAL_S": "0.5", "PERSAI_HEARTBEAT_TIMEOUT_S": "2"}
"""Worker settings under which a lost worker's job is taken over within seconds."""


def submit(client: httpx.Client, scenario: str, **extra: object) -> str:
    """Ask the question of a scripted-model scenario; the job's id."""
    body = {"question": f"[scenario:{scenario}] What happened?", "datasource": DATASOURCE, **extra}
    response = client.post("/api/v1/investigations", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def answer_after(delay_s: float, text: str = "All quiet.") -> list[dict[str, object]]:
    """A scripted-model scenario that answers `text` after `delay_s` seconds."""
    return [{"text": text, "delay_s": delay_s}]


def parse_sse(text: str) -> list[dict[str, str]]:
    """The events of an SSE body: dicts with id, event and data (comments dropped)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if fields:
            events.append(fields)
    return events
