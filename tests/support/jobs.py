"""What the integration tests ask PersAI's API, how they read its answers, and the jobs the
unit tests build by hand."""

from __future__ import annotations

import httpx

from persai.jobs import Job, Step, StepStatus

DATASOURCE = "/proxy/globaldatasources/prom"
"""The shared Prometheus, as the integration tests configure it (`persai_env`)."""
FAST_RECOVERY = {"PERSAI_HEARTBEAT_INTERVAL_S": "0.5", "PERSAI_HEARTBEAT_TIMEOUT_S": "2"}
"""Worker settings under which a lost worker's job is taken over within seconds."""
SHOP = "/proxy/projects/shop/datasources/prom"
"""A project's datasource, as Perses names it."""


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


def range_step(query: str, *, status: StepStatus = StepStatus.OK, step_s: float = 30) -> Step:
    """A range query the agent ran over 10:00-11:30 UTC on 2026-01-01, answered with 3 series."""
    data = {"query": query, "start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:30:00Z"}
    return Step(
        call_id=query,
        tool="execute_range_query",
        arguments={"query": query},
        status=status,
        data={**data, "step_s": step_s, "series": 3},
    )


def job_with(*steps: Step, datasource: str = SHOP) -> Job:
    """Alice's job that took these steps."""
    return Job(
        id="0123456789abcdef0123456789abcdef",
        owner="alice",
        question="Why is checkout slow?",
        datasource=datasource,
        conversation_id="c" * 32,
        steps=list(steps),
    )
