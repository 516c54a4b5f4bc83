"""A conversation deleted while one of its investigations runs stays deleted when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support.jobs import DATASOURCE, answer_after, submit
from tests.support.persai import PersAIStack, wait_for_job
from tests.support.redis import RedisServer
from tests.support.scripted_model import ScriptedModel


def test_a_conversation_deleted_mid_investigation_stays_deleted(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    redis_server: RedisServer,
) -> None:
    scripted_model.add_scenario("deleted-mid-job", answer_after(2.0, "Found it."))
    running = persai_stack()
    with running.client() as client:
        job_id = submit(client, "deleted-mid-job")
        conversation_id = client.get(f"/api/v1/investigations/{job_id}").json()["conversation_id"]
        deadline = time.monotonic() + 30
        while not scripted_model.requests("deleted-mid-job"):  # the model is answering
            assert time.monotonic() < deadline, running.logs()
            time.sleep(0.05)
        assert client.delete(f"/api/v1/conversations/{conversation_id}").status_code == 204

        job = wait_for_job(client, job_id)
        assert job["status"] == "succeeded", job
        assert job["answer"] == "Found it."
        assert job["conversation_id"] == conversation_id  # the record still says where it was

        gone = client.get(f"/api/v1/conversations/{conversation_id}")
        assert gone.status_code == 404
        assert gone.json()["error"]["type"] == "not_found"
        assert client.get("/api/v1/conversations").json() == []
        assert client.get("/sessions").json() == []
        follow_up = {"question": "And then?", "datasource": DATASOURCE}
        follow_up["conversation_id"] = conversation_id
        assert client.post("/api/v1/investigations", json=follow_up).status_code == 404
        turn = client.post(
            f"/session/{conversation_id}/turn",
            params={"datasource_path": DATASOURCE},
            json={"message": "And then?"},
        )
        assert turn.status_code == 404
    redis = redis_server.client()
    assert list(redis.scan_iter(match=f"*conversation*{conversation_id}*")) == []
    redis.close()
