"""Asking a running PersAI every case's question through the public API, and scoring the answers.

Each question is submitted with its datasource, the data's time range and the model, then polled
until it ends; wall time runs from the submission to the moment the end is seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from persai.agent.timeparse import rfc3339
from persai.client import INVESTIGATIONS, error_text, submission
from persai.eval.report import ModelRun, ScenarioResult
from persai.eval.scoring import score
from persai.eval.suite import Case
from persai.jobs import Job, Usage

log = logging.getLogger(__name__)

DEFAULT_LABEL = "(server default)"
_RETRIED = (429, 503)
_SUBMIT_ATTEMPTS = 5


class EvalError(RuntimeError):
    """PersAI could not be asked (unreachable, or it refused the question)."""


class EvalClient:
    """The public API as the harness uses it; `sleep` and `clock` may be passed in for tests."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        poll_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.poll_s = poll_s
        self.sleep = sleep
        self.clock = clock

    def models(self) -> tuple[list[str], str | None]:
        """The models a question may name, and the server's default (`GET /api/v1/models`)."""
        response = self._request("GET", "/api/v1/models")
        if response.status_code != 200:
            raise EvalError(f"GET /api/v1/models: {error_text(response)}")
        body = response.json()
        default = body.get("default")
        return [str(m) for m in body.get("models", [])], str(default) if default else None

    def submit(self, case: Case, model: str | None) -> str:
        """Queue the case's question; returns the investigation id."""
        time_range = {"start": rfc3339(case.start), "end": rfc3339(case.end)}
        body = submission(case.question, case.datasource, time_range=time_range, model=model)
        for attempt in range(1, _SUBMIT_ATTEMPTS + 1):
            response = self._request("POST", INVESTIGATIONS, json=body)
            if response.status_code == 202:
                return str(response.json()["id"])
            if response.status_code not in _RETRIED or attempt == _SUBMIT_ATTEMPTS:
                break
            self.sleep(float(response.headers.get("retry-after", "1") or 1))
        raise EvalError(error_text(response))

    def wait(self, job_id: str, timeout_s: float) -> Job | None:
        """Poll until the investigation ends; None when it has not ended within `timeout_s`."""
        deadline = self.clock() + timeout_s
        while self.clock() < deadline:
            try:
                response = self.client.get(f"{INVESTIGATIONS}/{job_id}")
            except httpx.TransportError as exc:
                log.warning("polling %s failed (%s); retrying", job_id, exc)
            else:
                if response.status_code != 200:
                    raise EvalError(f"investigation {job_id}: {error_text(response)}")
                job = Job.model_validate(response.json())
                if job.status.terminal:
                    return job
            self.sleep(self.poll_s)
        return None

    def cancel(self, job_id: str) -> None:
        """Ask for the investigation to be cancelled; failures are only logged."""
        try:
            self.client.post(f"{INVESTIGATIONS}/{job_id}/cancel")
        except httpx.TransportError as exc:
            log.warning("could not cancel %s: %s", job_id, exc)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise EvalError(f"cannot reach PersAI at {self.client.base_url}: {exc}") from exc


def run_case(client: EvalClient, case: Case, model: str | None, timeout_s: float) -> ScenarioResult:
    """Ask one case's question of `model` (None: the server's default) and score the answer.

    A question that could not be asked, or that failed or timed out, is a failed result.
    """
    began = client.clock()
    job: Job | None = None
    job_id: str | None = None
    status, error = "not_submitted", None
    try:
        job_id = client.submit(case, model)
        job = client.wait(job_id, timeout_s)
        if job is None:
            client.cancel(job_id)
            status, error = "timed_out", f"no result after {timeout_s:g} s (cancelled)"
        else:
            status, error = job.status.value, job.error
    except EvalError as exc:
        error = str(exc)
    wall_s = client.clock() - began
    answer = job.answer if job else None
    verdict = score(
        answer,
        job.steps if job else [],
        job.usage if job else Usage(),
        case.expected,
        status=status,
        error=error,
        wall_s=wall_s,
    )
    return ScenarioResult(
        scenario=case.scenario.name,
        generator=case.scenario.generator,
        model=model or DEFAULT_LABEL,
        investigation_id=job_id,
        status=status,
        error=error,
        question=case.question,
        answer=answer,
        score=verdict,
    )


def run_model(
    client: EvalClient,
    cases: Sequence[Case],
    model: str | None,
    *,
    timeout_s: float = 900.0,
    parallel: int = 1,
    progress: Callable[[ScenarioResult], None] | None = None,
) -> ModelRun:
    """Every case asked of one model (None: the server's default), `parallel` at a time.

    Results come in the cases' order; `progress` sees each as it is scored.
    """
    lock = threading.Lock()

    def one(case: Case) -> ScenarioResult:
        result = run_case(client, case, model, timeout_s)
        if progress is not None:
            with lock:
                progress(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="eval") as pool:
        results = list(pool.map(one, cases))
    return ModelRun(model=model or DEFAULT_LABEL, results=results)
