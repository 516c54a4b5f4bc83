"""The agent loop through the real API, workers, Llama Stack and Prometheus, driven by the
scripted model: several tools, tool errors and malformed calls handed back to the model, the
step budget, provider failures, cancellation, conversations across restarts, models, prompts.

Llama Stack turns every function call of the input into an assistant message of its own
(followed by its result), and the scripted model numbers its steps by the assistant messages
since the last user message: a round of N tool calls takes N step numbers. `script()` lays the
rounds out where the scripted model looks for them.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from persai.config import Settings
from persai.incidents import Incident
from tests.support.jobs import parse_sse
from tests.support.llama_stack import ON_EVERY_SERVER, LlamaStack, llama_stack
from tests.support.persai import MODEL, PersAIStack, wait_for_job
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer
from tests.support.redis import RedisServer
from tests.support.scripted_model import ScriptedModel

pytestmark = ON_EVERY_SERVER  # on Llama Stack and on OGX

DATASOURCE = "/proxy/globaldatasources/prom"
TOOL_ERROR = "Error when running tool"
_UNREACHED = {"text": "(a step the scripted model never reaches)"}

Step = dict[str, Any]
StartStack = Callable[..., PersAIStack]


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, prometheus: PrometheusServer, stack: LlamaStack
) -> Iterator[PersAIStack]:
    """An API and a worker for the tests that need no settings of their own.

    Starting PersAI's processes takes seconds; these tests use unique scenarios and look only
    at their own investigations, so they can share them (and a Redis of their own).
    """
    directory = tmp_path_factory.mktemp("persai-shared")
    redis = RedisServer(directory / "redis").start()
    running = PersAIStack(
        {
            "PERSAI_REDIS_URL": redis.url,
            "PERSAI_LLAMA_STACK_URL": stack.url,
            "PERSAI_MODEL": MODEL,
            "PERSAI_AUTH": "false",
            "PERSAI_DATASOURCES": f"prom={prometheus.url}",
            "PERSAI_LOG_LEVEL": "INFO",
        },
        directory,
    )
    try:
        running.start_ready()
        yield running
    finally:
        running.stop()
        redis.stop()


def script(*rounds: Step) -> list[Step]:
    """Scenario steps for rounds of model output; a round with N tool calls takes N steps."""
    steps: list[Step] = []
    for round_ in rounds:
        steps.append(round_)
        steps += [_UNREACHED] * (len(round_.get("tool_calls", [])) - 1)
    return steps


def range_call(query: str, **arguments: str) -> dict[str, Any]:
    return {"name": "execute_range_query", "arguments": {"query": query, **arguments}}


def submit(client: httpx.Client, question: str, **body: Any) -> str:
    response = client.post(
        "/api/v1/investigations", json={"question": question, "datasource": DATASOURCE, **body}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def finished(client: httpx.Client, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """The job's record once it is finished."""
    return cast(dict[str, Any], wait_for_job(client, job_id, timeout_s))


def events_of(client: httpx.Client, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The job's whole event stream (it ends with `done`) as (event, data) pairs."""
    response = client.get(f"/api/v1/investigations/{job_id}/events")
    assert response.status_code == 200
    return [(e["event"], json.loads(e["data"])) for e in parse_sse(response.text)]


def system_prompt(request: dict[str, Any]) -> str:
    [system] = [m for m in request["messages"] if m["role"] == "system"]
    content: str = system["content"]
    return content


def tool_messages(request: dict[str, Any]) -> dict[str, str]:
    """The tool results a model request carries, by call id."""
    return {m["tool_call_id"]: m["content"] for m in request["messages"] if m["role"] == "tool"}


def test_several_tool_calls_in_one_step_and_across_steps(
    shared: PersAIStack, scripted_model: ScriptedModel, incidents: dict[str, Incident]
) -> None:
    latency, errors = incidents["latency_spike"].truth, incidents["error_burst"].truth
    first_round = [
        range_call(latency.query, duration="2h"),
        range_call(errors.query, duration="2h", step="1m"),
    ]
    second_round = [range_call(errors.query, start="now-2h", end="now")]
    scripted_model.add_scenario(
        "runtime-several",
        script(
            {"tool_calls": first_round},
            {"tool_calls": second_round},
            {"text": "Errors come from {match}.", "match": r'endpoint="([^"]+)"'},
        ),
    )
    with shared.client() as client:
        job_id = submit(client, "[scenario:runtime-several] What is wrong with the shop?")
        job = finished(client, job_id)
        events = events_of(client, job_id)
    assert job["status"] == "succeeded", shared.logs()
    assert job["answer"] == f"Errors come from {errors.culprit_value}."

    steps = job["steps"]
    assert [s["arguments"] for s in steps] == [c["arguments"] for c in first_round + second_round]
    assert [s["tool"] for s in steps] == ["execute_range_query"] * 3
    assert [s["status"] for s in steps] == ["ok"] * 3
    assert all(s["output"] and s["duration_ms"] is not None for s in steps)
    call_ids = [s["call_id"] for s in steps]
    assert len(set(call_ids)) == 3
    assert latency.culprit_value in steps[0]["output"]
    assert steps[1]["data"]["step_s"] == 60

    # each call is announced, then answered, in the order the model made them
    tool_events = [(name, data) for name, data in events if name in ("tool_call", "tool_result")]
    expected = [(name, call_id) for call_id in call_ids for name in ("tool_call", "tool_result")]
    assert [(name, data["call_id"]) for name, data in tool_events] == expected
    results = [data for name, data in tool_events if name == "tool_result"]
    assert [r["output"] for r in results] == [s["output"] for s in steps]
    assert [e for e, _ in events][-3:] == ["answer", "status", "done"]

    usage = job["usage"]
    assert (usage["model_calls"], usage["tool_calls"]) == (3, 3)
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["model_time_ms"] > 0
    assert usage["tool_time_ms"] > 0

    # the model saw both results of its first round, then all three
    requests = scripted_model.requests("runtime-several")
    assert len(requests) == 3
    assert list(tool_messages(requests[1])) == call_ids[:2]
    assert tool_messages(requests[2]) == {s["call_id"]: s["output"] for s in steps}
    assert requests[0]["tools"][0]["function"]["name"] == "execute_range_query"


def test_the_model_recovers_from_a_promql_error(
    shared: PersAIStack, scripted_model: ScriptedModel, incidents: dict[str, Incident]
) -> None:
    errors = incidents["error_burst"].truth
    broken = 'sum by (endpoint) (rate(http_requests_total{code=~"5.."}[5m])'
    scripted_model.add_scenario(
        "runtime-promql-error",
        script(
            {"tool_calls": [range_call(broken, duration="2h")]},
            {"tool_calls": [range_call(errors.query, duration="2h")]},
            {"text": "Errors come from {match}.", "match": r'endpoint="([^"]+)"'},
        ),
    )
    with shared.client() as client:
        job_id = submit(client, "[scenario:runtime-promql-error] Where do the 5xx come from?")
        job = finished(client, job_id)
        events = events_of(client, job_id)
    assert job["status"] == "succeeded", shared.logs()
    assert job["answer"] == f"Errors come from {errors.culprit_value}."
    failed, fixed = job["steps"]
    assert failed["status"] == "error"
    assert failed["output"].startswith(f"{TOOL_ERROR} execute_range_query")
    assert "parse error" in failed["output"]  # Prometheus's own words
    assert fixed["status"] == "ok"
    results = [data for name, data in events if name == "tool_result"]
    assert [r["status"] for r in results] == ["error", "ok"]

    retry = scripted_model.requests("runtime-promql-error")[1]
    assert tool_messages(retry) == {failed["call_id"]: failed["output"]}


def test_malformed_tool_calls_go_back_to_the_model(
    shared: PersAIStack, scripted_model: ScriptedModel
) -> None:
    bad_calls = [
        {"name": "execute_range_query", "raw_arguments": '{"query": "up"'},
        {"name": "delete_all_dashboards", "arguments": {"really": True}},
        {"name": "execute_range_query", "arguments": {"duration": "1h"}},
    ]
    scripted_model.add_scenario(
        "runtime-malformed",
        script({"tool_calls": bad_calls}, {"text": "I could not query anything, sorry."}),
    )
    with shared.client() as client:
        job_id = submit(client, "[scenario:runtime-malformed] Is everything up?")
        job = finished(client, job_id)
    assert job["status"] == "succeeded", shared.logs()
    assert job["answer"] == "I could not query anything, sorry."

    not_json, unknown, invalid = job["steps"]
    assert all(s["status"] == "error" for s in job["steps"])
    assert all(s["output"].startswith(TOOL_ERROR) for s in job["steps"])
    assert not_json["arguments"] == {"_unparsed": '{"query": "up"'}
    assert "not valid JSON" in not_json["output"]
    assert unknown["tool"] == "delete_all_dashboards"
    assert "no tool named 'delete_all_dashboards'" in unknown["output"]
    assert "execute_range_query" in unknown["output"]  # what it may call instead
    assert "query: Field required" in invalid["output"]
    assert job["usage"]["tool_calls"] == 3

    answer_request = scripted_model.requests("runtime-malformed")[-1]
    assert tool_messages(answer_request) == {s["call_id"]: s["output"] for s in job["steps"]}


def test_the_step_budget_forces_a_final_answer_without_tools(
    persai_stack: StartStack, scripted_model: ScriptedModel, incidents: dict[str, Incident]
) -> None:
    latency = incidents["latency_spike"].truth
    scripted_model.add_scenario(
        "runtime-budget",
        script(
            {"tool_calls": [range_call(latency.query, duration="1h")]},
            {"tool_calls": [range_call(latency.query, duration="2h")]},
            {
                "text": "So far {match} looks slowest; I could not compare with yesterday.",
                "match": r'service="([^"]+)"',
            },
        ),
    )
    # a model that never stops calling tools, not even when it is offered none
    scripted_model.add_scenario(
        "runtime-budget-stubborn",
        script(*[{"tool_calls": [range_call("up", duration="5m")]}] * 4),
    )
    running = persai_stack(PERSAI_MAX_STEPS="2")
    with running.client() as client:
        job_id = submit(client, "[scenario:runtime-budget] Which service is slow?")
        stubborn_id = submit(client, "[scenario:runtime-budget-stubborn] Is everything up?")
        job = finished(client, job_id)
        stubborn = finished(client, stubborn_id)
    assert job["status"] == "succeeded", running.logs()
    assert job["answer"] == (
        f"So far {latency.culprit_value} looks slowest; I could not compare with yesterday."
    )
    assert len(job["steps"]) == 2
    assert (job["usage"]["model_calls"], job["usage"]["tool_calls"]) == (3, 2)

    *with_tools, final = scripted_model.requests("runtime-budget")
    assert all(r["tools"] for r in with_tools)
    assert not final["tools"]
    assert "limit of 2 steps was reached" in system_prompt(final)
    assert "what is missing" in system_prompt(final)
    assert [m["role"] for m in final["messages"]].count("user") == 1  # only the question
    assert len(tool_messages(final)) == 2  # everything that was found

    assert stubborn["status"] == "succeeded", running.logs()
    assert len(stubborn["steps"]) == 2
    assert stubborn["answer"]
    assert "limit of 2 steps" in stubborn["answer"]
    assert not scripted_model.requests("runtime-budget-stubborn")[-1]["tools"]


def test_a_rate_limited_provider_is_retried(
    shared: PersAIStack, scripted_model: ScriptedModel
) -> None:
    # Llama Stack retries twice itself; the third 429 reaches PersAI, which retries once more.
    scripted_model.add_scenario(
        "runtime-rate-limited",
        script(
            {"status": 429, "times": 3, "tool_calls": [range_call("up", duration="10m")]},
            {"text": "Every target is up."},
        ),
    )
    with shared.client() as client:
        job_id = submit(client, "[scenario:runtime-rate-limited] Up?")
        job = finished(client, job_id)
    assert job["status"] == "succeeded", shared.logs()
    assert job["answer"] == "Every target is up."
    assert job["error"] is None
    assert len(scripted_model.requests("runtime-rate-limited")) == 5
    usage = job["usage"]
    assert (usage["model_calls"], usage["tool_calls"]) == (2, 1)
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    retries = [line for line in shared.logs().splitlines() if f"job_id={job_id}" in line]
    assert any("429" in line and "retry 1/3" in line for line in retries), retries


def test_a_failing_provider_fails_the_investigation_naming_it(
    shared: PersAIStack, scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("runtime-provider-down", [{"status": 500}])
    with shared.client() as client:
        job_id = submit(client, "[scenario:runtime-provider-down] Anything wrong?")
        job = finished(client, job_id)
        events = events_of(client, job_id)
    assert job["status"] == "failed"
    assert job["answer"] is None
    assert re.search(r"model provider 'llm' failed for model 'llm/scripted'.*500", job["error"])
    errors = [data["message"] for name, data in events if name == "error"]
    assert errors == [job["error"]]
    assert events[-1] == ("done", {"status": "failed"})


def test_llama_stack_down_is_reported(persai_stack: StartStack) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    # a refused connection is tried again until the model call's deadline (a restarting stack)
    running = persai_stack(PERSAI_LLAMA_STACK_URL=nowhere, PERSAI_MODEL_CALL_TIMEOUT_S="5")
    with running.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        check = ready.json()["checks"]["llama_stack"]
        assert check["ok"] is False
        assert "Llama Stack is unreachable" in check["reason"]
        assert nowhere.rsplit(":", 1)[1] not in check["reason"]  # what is down, not where

        models = client.get("/api/v1/models")
        assert models.status_code == 503
        assert models.json()["error"]["type"] == "model_unavailable"

        job = finished(client, submit(client, "Anything wrong?"))
    assert job["status"] == "failed"
    assert "Llama Stack is unreachable" in job["error"]


def test_cancelling_mid_stream_stops_within_two_seconds(
    shared: PersAIStack, scripted_model: ScriptedModel
) -> None:
    slow_answer = "The error rate rose at 14:05 UTC on checkout and fell again ten minutes later."
    scripted_model.add_scenario(
        "runtime-cancel",
        script(
            {"tool_calls": [range_call("up", duration="10m")]},
            {"text": slow_answer, "chunk_delay_s": 1.5},
        ),
    )
    with shared.client() as client:
        job_id = submit(client, "[scenario:runtime-cancel] What happened at 14:05?")
        with client.stream("GET", f"/api/v1/investigations/{job_id}/events") as stream:
            lines = stream.iter_lines()
            before = "\n".join(
                itertools.takewhile(lambda line: line != "event: message_delta", lines)
            )
            assert "event: done" not in before  # the answer is streaming now
            cancelled_at = time.monotonic()
            assert client.post(f"/api/v1/investigations/{job_id}/cancel").status_code == 200
            job = finished(client, job_id, timeout_s=10)
            stopped_s = time.monotonic() - cancelled_at
            rest = parse_sse("\n".join(lines))  # from the middle of the first delta on
            after = [(e["event"], json.loads(e["data"])) for e in rest if "event" in e]
    assert job["status"] == "cancelled", shared.logs()
    assert stopped_s < 2.0
    assert job["error"] is None
    [step] = job["steps"]  # the steps so far are kept
    assert step["status"] == "ok"
    assert slow_answer not in json.dumps(job)
    assert after[-1] == ("done", {"status": "cancelled"})  # and then the stream ended
    assert "answer" not in [name for name, _ in after]
    # a second cancel changes nothing
    with shared.client() as client:
        again = client.post(f"/api/v1/investigations/{job_id}/cancel")
    assert again.json()["status"] == "cancelled"


def test_a_conversation_continues_after_every_process_restarts(
    persai_stack: StartStack,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
    redis_server: RedisServer,
    tmp_path: Path,
    stack: LlamaStack,
) -> None:
    latency = incidents["latency_spike"].truth
    scripted_model.add_scenario(
        "runtime-turn-1",
        script(
            {"tool_calls": [range_call(latency.query, duration="2h")]},
            {"text": "{match} is slow.", "match": r'service="([^"]+)"'},
        ),
    )
    scripted_model.add_scenario("runtime-turn-2", [{"text": "Since the spike began."}])
    directory = tmp_path / "llama-stack"
    settings = Settings(llm_base_url=scripted_model.base_url, stack_state_dir=directory)
    first_question = "[scenario:runtime-turn-1] Which service is slow?"

    with llama_stack(settings, directory, server=stack.server) as restarted:
        running = persai_stack(PERSAI_LLAMA_STACK_URL=restarted.url)
        with running.client() as client:
            first = finished(client, submit(client, first_question))
        running.stop()
    assert first["status"] == "succeeded", running.logs()
    assert first["answer"] == f"{latency.culprit_value} is slow."
    conversation_id = first["conversation_id"]
    redis_server.stop()  # with its append-only file, as in production
    redis_server.start()

    with llama_stack(settings, directory, server=stack.server) as restarted:
        running = persai_stack(PERSAI_LLAMA_STACK_URL=restarted.url)
        with running.client() as client:
            question = "[scenario:runtime-turn-2] Since when?"
            second = finished(client, submit(client, question, conversation_id=conversation_id))
            conversation = client.get(f"/api/v1/conversations/{conversation_id}")
    assert second["status"] == "succeeded", running.logs()
    assert second["answer"] == "Since the spike began."
    assert second["conversation_id"] == conversation_id

    [request] = scripted_model.requests("runtime-turn-2")
    seen = json.dumps(request["messages"])
    assert json.dumps(first_question)[1:-1] in seen
    assert first["answer"] in seen
    [tool_result] = tool_messages(request).values()
    assert tool_result == first["steps"][0]["output"]
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert conversation.status_code == 200
    kinds = [m["kind"] for m in conversation.json()["messages"]]
    assert kinds == ["user", "tool_call", "tool_result", "assistant", "user", "assistant"]


def test_models_are_listed_and_an_unknown_one_is_refused(shared: PersAIStack) -> None:
    with shared.client() as client:
        models = client.get("/api/v1/models")
        assert models.status_code == 200
        assert models.json() == {"models": [MODEL], "default": MODEL}

        refused = client.post(
            "/api/v1/investigations",
            json={"question": "q", "datasource": DATASOURCE, "model": "acme/gpt-9"},
        )
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["type"] == "unknown_model"
        assert "acme/gpt-9" in error["message"]
        assert MODEL in error["message"]

        chosen = submit(client, "q", model=MODEL)
        assert client.get(f"/api/v1/investigations/{chosen}").json()["model"] == MODEL


def test_the_prompt_tells_the_model_the_time_datasource_and_range(
    shared: PersAIStack, scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("runtime-prompt", [{"text": "Noted."}])
    start = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    ranges = {
        "absolute": {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()},
        "relative": {"duration": "6h"},
        "none": None,
    }
    with shared.client() as client:
        ids = {
            kind: submit(client, f"[scenario:runtime-prompt] {kind}", time_range=time_range)
            for kind, time_range in ranges.items()
        }
        jobs = {kind: finished(client, job_id) for kind, job_id in ids.items()}
    assert all(job["status"] == "succeeded" for job in jobs.values()), shared.logs()

    prompts = {
        r["messages"][-1]["content"].split()[-1]: system_prompt(r)
        for r in scripted_model.requests("runtime-prompt")
    }
    for kind, prompt in prompts.items():
        assert prompt.startswith("You are PersAI")
        assert f"Datasource: {DATASOURCE}" in prompt
        [now] = re.findall(r"Current time: (\S+) \(UTC", prompt)
        started = datetime.fromisoformat(str(jobs[kind]["started_at"]))
        assert abs(datetime.fromisoformat(now) - started) < timedelta(seconds=5)
    absolute = "Dashboard time range: 2026-03-01T14:00:00Z to 2026-03-01T15:00:00Z."
    assert absolute in prompts["absolute"]
    assert "Dashboard time range: the last 6h." in prompts["relative"]
    assert "Dashboard time range" not in prompts["none"]


def test_the_operator_prompt_replaces_the_default(
    persai_stack: StartStack, scripted_model: ScriptedModel
) -> None:
    # the scenario is named only in the operator's prompt: the answer proves the model got it
    operator_prompt = "You are Ops Bot; answer in one line. [scenario:runtime-operator-prompt]"
    scripted_model.add_scenario("runtime-operator-prompt", [{"text": "One line."}])
    running = persai_stack(PERSAI_SYSTEM_PROMPT=operator_prompt)
    with running.client() as client:
        job = finished(client, submit(client, "Anything wrong?"))
    assert job["status"] == "succeeded", running.logs()
    assert job["answer"] == "One line."
    [request] = scripted_model.requests("runtime-operator-prompt")
    prompt = system_prompt(request)
    assert prompt.startswith(operator_prompt)
    assert "You are PersAI" not in prompt
    assert "Current time: " in prompt
    assert f"Datasource: {DATASOURCE}" in prompt
