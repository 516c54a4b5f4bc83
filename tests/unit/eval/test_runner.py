"""The harness asks through the public API (a fake PersAI passed in as an httpx transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from persai.eval import Case, EvalClient, EvalError, load_suite, prepare, run_case, run_model
from persai.jobs import Job, JobStatus, Step, StepStatus, Usage

END = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
Answer = Callable[[dict[str, Any]], str]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class FakePersAI:
    """Queues investigations and finishes each after `polls` reads, with `answer(body)`."""

    def __init__(self, answer: Answer, *, polls: int = 2, refuse: list[int] | None = None) -> None:
        self.answer = answer
        self.polls = polls
        self.refuse = list(refuse or [])
        self.bodies: list[dict[str, Any]] = []
        self.jobs: dict[str, Job] = {}
        self.reads: dict[str, int] = {}
        self.cancelled: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/models":
            return httpx.Response(200, json={"models": ["llm/a", "llm/b"], "default": "llm/a"})
        if path == "/api/v1/investigations" and request.method == "POST":
            return self._submit(json.loads(request.content))
        job_id = path.split("/")[4]
        if path.endswith("/cancel"):
            self.cancelled.append(job_id)
            return httpx.Response(200, json=self.jobs[job_id].model_dump(mode="json"))
        self.reads[job_id] = self.reads.get(job_id, 0) + 1
        job = self.jobs[job_id]
        if self.reads[job_id] >= self.polls:
            job = self._finish(job)
        return httpx.Response(200, json=job.model_dump(mode="json"))

    def _submit(self, body: dict[str, Any]) -> httpx.Response:
        if self.refuse:
            status = self.refuse.pop(0)
            error = {"error": {"type": "too_many" if status == 429 else "bad", "message": "no"}}
            return httpx.Response(status, json=error, headers={"Retry-After": "2"})
        self.bodies.append(body)
        job_id = f"job{len(self.bodies)}"
        self.jobs[job_id] = Job(
            id=job_id,
            owner="anonymous",
            question=body["question"],
            datasource=body["datasource"],
            conversation_id="c",
            model=body.get("model"),
            status=JobStatus.RUNNING,
        )
        return httpx.Response(202, json={"id": job_id, "status": "queued"})

    def _finish(self, job: Job) -> Job:
        step = Step(call_id="1", tool="execute_range_query", arguments={}, status=StepStatus.OK)
        usage = Usage(model_calls=2, input_tokens=1000, output_tokens=50, tool_calls=1)
        body = next(b for b in self.bodies if b["question"] == job.question)
        return job.model_copy(
            update={
                "status": JobStatus.SUCCEEDED,
                "answer": self.answer(body),
                "steps": [step],
                "usage": usage,
            }
        )


def cases() -> list[Case]:
    return prepare(load_suite().select(["latency", "quiet-day"]), end=END)


def good_answer(body: dict[str, Any]) -> str:
    """Right about the latency case, and wrongly alarmed about the quiet one."""
    latency = cases()[0]
    if "latency" in body["question"]:
        when = latency.expected.window_start
        assert when is not None
        culprit = latency.expected.culprit[0]
        return f"{culprit} at {when:%H:%M} UTC: `{latency.incident.truth.query}`"
    return "The root cause is /api/cart: `rate(http_requests_total[5m])`"


def harness(fake: FakePersAI) -> tuple[EvalClient, FakeClock]:
    clock = FakeClock()
    http = httpx.Client(base_url="http://persai", transport=httpx.MockTransport(fake))
    return EvalClient(http, poll_s=0.5, sleep=clock.sleep, clock=clock), clock


def test_each_case_is_asked_with_its_data_range_and_scored() -> None:
    fake = FakePersAI(good_answer)
    client, _ = harness(fake)
    seen: list[str] = []
    run = run_model(client, cases(), "llm/b", progress=lambda r: seen.append(r.scenario))
    assert run.model == "llm/b"
    assert [r.scenario for r in run.results] == seen == ["latency", "quiet-day"]
    latency, quiet = run.results
    assert latency.score.passed, latency.score.reasons
    assert latency.status == "succeeded"
    assert latency.investigation_id == "job1"
    assert not quiet.score.passed
    assert quiet.score.reasons == ["blames a cause although nothing is wrong"]
    first = fake.bodies[0]
    assert first["model"] == "llm/b"
    assert first["datasource"] == "/proxy/globaldatasources/eval"
    assert first["time_range"] == {"start": "2026-11-24T12:00:00Z", "end": "2026-11-24T14:00:00Z"}
    assert first["question"] == cases()[0].question
    assert run.totals.passed == 1
    assert run.totals.tool_calls == 2
    assert run.totals.input_tokens == 2000
    assert run.totals.checks["uncertainty"].model_dump() == {"met": 0, "applicable": 1}


def test_the_servers_default_model_is_used_when_none_is_named() -> None:
    fake = FakePersAI(good_answer)
    client, _ = harness(fake)
    assert client.models() == (["llm/a", "llm/b"], "llm/a")
    run = run_model(client, cases()[:1], None, parallel=4)
    assert "model" not in fake.bodies[0]
    assert run.model == "(server default)"


def test_a_busy_server_is_retried_after_the_time_it_asks() -> None:
    fake = FakePersAI(good_answer, refuse=[429, 429])
    client, clock = harness(fake)
    result = run_case(client, cases()[0], "llm/a", timeout_s=60)
    assert result.score.passed
    assert clock.sleeps[:2] == [2.0, 2.0]


def test_a_refused_question_is_a_failed_result_with_the_servers_reason() -> None:
    fake = FakePersAI(good_answer, refuse=[400])
    client, _ = harness(fake)
    result = run_case(client, cases()[0], "llm/a", timeout_s=60)
    assert result.status == "not_submitted"
    assert result.error == "400 bad: no"
    assert result.investigation_id is None
    assert result.score.reasons[0] == "investigation not_submitted: 400 bad: no"


def test_an_investigation_that_never_ends_is_cancelled_and_timed_out() -> None:
    fake = FakePersAI(good_answer, polls=10**9)
    client, clock = harness(fake)
    result = run_case(client, cases()[0], "llm/a", timeout_s=5)
    assert result.status == "timed_out"
    assert fake.cancelled == ["job1"]
    assert not result.score.passed
    assert result.score.wall_s == pytest.approx(5.0)
    assert clock.now == pytest.approx(5.0)


def test_an_unreachable_server_is_a_clear_error() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.Client(base_url="http://persai:1", transport=httpx.MockTransport(down))
    with pytest.raises(EvalError, match="cannot reach PersAI at http://persai:1"):
        EvalClient(http).models()
