"""A PersAI that answers `persai eval`'s client from memory (httpx.MockTransport), with the
clock and the suite cases the evaluation tests share."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from persai.cli import parser
from persai.eval import Case, EvalClient, EvalOptions, load_suite, prepare
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


def options(*argv: str) -> EvalOptions:
    """`persai eval` options from its command line."""
    return EvalOptions.from_args(parser().parse_args(["eval", *argv]))
