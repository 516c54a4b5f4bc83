"""An ended investigation carries its evidence: the query calls its answer rests on, each with
its window and what stood out (from the result analysis), in call order and bounded."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import fakeredis
import numpy as np
import pytest

from persai.agent import Limits, Progress, Reporter, Turn
from persai.agent.llama import AssistantMessage
from persai.agent.results import range_findings
from persai.agent.tools import ToolContext
from persai.jobs import JobStatus, JobStore, Step, StepStatus
from persai.runtime.evidence import MAX_EVIDENCE, MAX_TEXT_CHARS, evidence_of
from tests.support.runner import runner, stored_job

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, 10, tzinfo=UTC)
END = datetime(2026, 1, 1, 11, tzinfo=UTC)


def _matrix(spike_pod: int | None) -> dict[str, Any]:
    """Ten pods' 5xx rate, flat with noise; one of them 12x higher from 10:31 on."""
    rng = np.random.default_rng(7)
    times = np.arange(START.timestamp(), END.timestamp() + 1, 30.0)
    result = []
    for pod in range(10):
        values = 1.0 + rng.normal(0, 0.02, len(times))
        if pod == spike_pod:
            values[times >= START.timestamp() + 31 * 60] *= 12
        points = [[t, str(v)] for t, v in zip(times.tolist(), values.tolist(), strict=True)]
        result.append({"metric": {"service": "checkout-api", "pod": f"p{pod}"}, "values": points})
    return {"resultType": "matrix", "result": result}


def test_findings_name_the_series_that_stands_out_and_when() -> None:
    window = {"query": "rate(http_5xx[5m])", "start": START, "end": END, "step_s": 30.0}
    findings = range_findings(_matrix(spike_pod=3), **window)
    assert findings
    assert findings[0].startswith('{pod="p3"}')
    assert "10:31" in findings[0]
    assert range_findings(_matrix(spike_pod=None), **window) == []


def _step(tool: str, query: str, findings: list[str], status: StepStatus = StepStatus.OK) -> Step:
    data: dict[str, Any] = {"query": query, "findings": findings}
    if tool == "execute_range_query":
        data |= {"start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:00:00Z", "step_s": 30.0}
    else:
        data |= {"time": "2026-01-01T11:00:00Z", "result_type": "vector"}
    return Step(call_id=query, tool=tool, arguments={"query": query}, status=status, data=data)


def test_evidence_is_the_flagged_calls_else_every_successful_query_call() -> None:
    quiet = _step("execute_instant_query", "up", [])
    loud = _step("execute_range_query", "rate(x[5m])", ["x rose 12x at 10:31"])
    failed = _step("execute_range_query", "bad(", ["?"], StepStatus.ERROR)
    listing = Step(call_id="n", tool="list_metric_names", arguments={}, status=StepStatus.OK)
    evidence = evidence_of([quiet, failed, listing, loud], "/proxy/globaldatasources/prom")
    assert [(e.query, e.kind, e.findings) for e in evidence] == [
        ("rate(x[5m])", "range", ["x rose 12x at 10:31"])
    ]
    wire = evidence[0].model_dump(mode="json")
    assert wire["start"] == "2026-01-01T10:00:00Z"
    assert wire["step_seconds"] == 30.0
    assert wire["datasource"] == "/proxy/globaldatasources/prom"

    (instant,) = evidence_of([quiet, failed], "prom")
    assert instant.model_dump(mode="json") | {"findings": None} == {
        "tool": "execute_instant_query",
        "datasource": "prom",
        "query": "up",
        "kind": "instant",
        "start": "2026-01-01T11:00:00Z",
        "end": "2026-01-01T11:00:00Z",
        "step_seconds": None,
        "findings": None,
    }


def test_evidence_is_bounded() -> None:
    long = "x" * (MAX_TEXT_CHARS * 3)
    steps = [_step("execute_range_query", long, [long] * 20) for _ in range(50)]
    evidence = evidence_of(steps, "prom")
    assert len(evidence) == MAX_EVIDENCE
    assert all(len(e.findings) <= 5 for e in evidence)
    assert max(len(text) for e in evidence for text in (e.query, *e.findings)) <= MAX_TEXT_CHARS


class QueryingInvestigator:
    """Makes two query calls (one whose result stood out), then answers or fails."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def run(
        self, turn: Turn, context: ToolContext, reporter: Reporter, limits: Limits, p: Progress
    ) -> Progress:
        p.steps += [
            _step("execute_instant_query", "up", []),
            _step("execute_range_query", "rate(x[5m])", ["x rose 12x at 10:31"]),
        ]
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("the model server went away")
        p.answer = "x rose."
        p.messages.append(AssistantMessage(text=p.answer))
        return p


@pytest.mark.parametrize("fail", [False, True])
async def test_an_ended_job_and_its_last_status_event_carry_the_evidence(fail: bool) -> None:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = JobStore(redis, retention_s=60)
    await stored_job(redis)
    await runner(redis, QueryingInvestigator(fail), "w").run("j1")

    ended = await store.get("j1")
    assert ended is not None
    assert ended.status is (JobStatus.FAILED if fail else JobStatus.SUCCEEDED)
    assert [e.query for e in ended.evidence] == ["rate(x[5m])"]
    document = json.loads(await store.document_for("alice", "j1"))
    assert document["evidence"][0]["findings"] == ["x rose 12x at 10:31"]
    events = await store.read_events("j1", "0", block_ms=None)
    (last_status,) = [e for e in events if e.event == "status"][-1:]
    assert last_status.data["evidence"] == document["evidence"]
    await redis.aclose()
