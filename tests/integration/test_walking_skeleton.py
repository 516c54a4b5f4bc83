"""A question travels API → Redis → Celery worker → Llama Stack → Prometheus tool → back."""

from __future__ import annotations

import json
from collections.abc import Callable

from persai.incidents import Incident
from tests.support.jobs import DATASOURCE, parse_sse
from tests.support.llama_stack import ON_EVERY_SERVER
from tests.support.persai import PersAIStack, wait_for_job
from tests.support.scripted_model import ScriptedModel

pytestmark = ON_EVERY_SERVER  # on Llama Stack and on OGX


def test_question_is_answered_from_the_tool_result(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
) -> None:
    latency = incidents["latency_spike"]
    culprit = latency.truth.culprit_value
    assert culprit
    scripted_model.add_scenario(
        "skeleton",
        [
            {
                "tool_calls": [
                    {
                        "name": "execute_range_query",
                        "arguments": {"query": latency.truth.query, "duration": "2h"},
                    }
                ]
            },
            # The answer quotes the first service the tool output names: only the tool's result
            # holds it, so finding the culprit in the answer proves the result reached the model.
            {"text": "The culprit is {match}.", "match": r'service="([^"]+)"'},
        ],
    )
    running = persai_stack()
    with running.client() as client:
        submitted = client.post(
            "/api/v1/investigations",
            json={
                "question": "[scenario:skeleton] Which service is slow?",
                "datasource": DATASOURCE,
            },
        )
        assert submitted.status_code == 202, submitted.text
        accepted = submitted.json()
        assert accepted["status"] == "queued"
        assert accepted["links"]["events"] == f"/api/v1/investigations/{accepted['id']}/events"

        job = wait_for_job(client, accepted["id"])
        assert job["status"] == "succeeded", running.logs()
        assert job["answer"] == f"The culprit is {culprit}."
        (step,) = job["steps"]
        assert step["tool"] == "execute_range_query"
        assert step["arguments"] == {"query": latency.truth.query, "duration": "2h"}
        assert step["status"] == "ok"
        assert culprit in step["output"]
        assert step["data"]["query"] == latency.truth.query
        assert job["usage"]["model_calls"] == 2
        assert job["usage"]["tool_calls"] == 1

        stream = client.get(accepted["links"]["events"])
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")

    events = parse_sse(stream.text)
    names = [e["event"] for e in events]
    assert names[0] == "status"
    assert json.loads(events[0]["data"]) == {"status": "queued"}
    assert json.loads(events[1]["data"])["status"] == "running"
    assert names.index("tool_call") < names.index("tool_result") < names.index("answer")
    assert names[-2:] == ["status", "done"]
    assert json.loads(events[-2]["data"])["status"] == "succeeded"
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    text = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "message_delta")
    assert text == f"The culprit is {culprit}."

    # the model saw the tool's output: the second request carries it as a tool message
    second = scripted_model.requests("skeleton")[1]
    tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
    assert culprit in json.dumps(tool_messages)


def test_redis_down_is_a_503_then_recovers(
    persai_stack: Callable[..., PersAIStack], redis_server: object
) -> None:
    from tests.support.redis import RedisServer

    assert isinstance(redis_server, RedisServer)
    running = persai_stack(workers=0)
    body = {"question": "q", "datasource": DATASOURCE}
    with running.client() as client:
        redis_server.stop()
        down = client.post("/api/v1/investigations", json=body)
        assert down.status_code == 503
        assert down.json()["error"]["type"] == "store_unavailable"
        assert "Redis" in down.json()["error"]["message"]
        assert down.headers["retry-after"]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"]["ok"] is False
        redis_server.start()
        again = client.post("/api/v1/investigations", json=body)
        assert again.status_code == 202, again.text
        assert client.get(f"/api/v1/investigations/{again.json()['id']}").status_code == 200
