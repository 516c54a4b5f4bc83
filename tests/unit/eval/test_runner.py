"""The harness asks through the public API (a fake PersAI passed in as an httpx transport)."""

from __future__ import annotations

import httpx
import pytest

from persai.eval import EvalClient, EvalError, run_case, run_model
from tests.support.eval_api import FakePersAI, cases, good_answer, harness


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
