"""Investigations are never lost: cancellation, deadlines, crashes, restarts, resumable streams."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable

from tests.support.jobs import DATASOURCE, FAST_RECOVERY, answer_after, parse_sse, submit
from tests.support.persai import PersAIStack, wait_for_job
from tests.support.redis import RedisServer
from tests.support.scripted_model import ScriptedModel


def test_cancel_a_running_job_stops_it_within_two_seconds(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario(
        "cancel-running",
        [
            {"tool_calls": [{"name": "execute_range_query", "arguments": {"query": "up"}}]},
            {"text": "never", "delay_s": 30},
        ],
    )
    running = persai_stack()
    with running.client() as client:
        job_id = submit(client, "cancel-running")
        deadline = time.monotonic() + 30
        while len(scripted_model.requests("cancel-running")) < 2:
            assert time.monotonic() < deadline, running.logs()
            time.sleep(0.05)
        asked = time.monotonic()
        client.post(f"/api/v1/investigations/{job_id}/cancel")
        job = wait_for_job(client, job_id, timeout_s=10)
        took = time.monotonic() - asked
        events = parse_sse(client.get(f"/api/v1/investigations/{job_id}/events").text)
    assert job["status"] == "cancelled"
    assert took < 2.0
    assert [s["tool"] for s in job["steps"]] == ["execute_range_query"]  # what it had found
    assert events[-1]["event"] == "done"
    assert json.loads(events[-1]["data"]) == {"status": "cancelled"}


def test_a_job_past_its_deadline_fails_with_the_reason(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("deadline", [{"text": "late", "delay_s": 20}] * 2)
    running = persai_stack(PERSAI_INVESTIGATION_TIMEOUT_S="1.5", PERSAI_MODEL_CALL_TIMEOUT_S="1.5")
    with running.client() as client:
        job = wait_for_job(client, submit(client, "deadline"), timeout_s=30)
    assert job["status"] == "failed"
    assert "deadline of 3 s" in str(job["error"])


def test_a_killed_worker_loses_nothing(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("sigkill", answer_after(4, "Survived."))
    running = persai_stack(**FAST_RECOVERY)
    with running.client() as client:
        job_id = submit(client, "sigkill")
        wait_for_job(client, job_id, until=("running",))
        running.workers[0].signal(signal.SIGKILL)
        running.start_worker()
        killed_at = time.monotonic()
        job = wait_for_job(client, job_id, timeout_s=60)
    assert job["status"] == "succeeded", running.logs()
    assert job["answer"] == "Survived."
    assert job["attempts"] == 2
    assert time.monotonic() - killed_at < 60


def test_sigterm_lets_the_worker_finish_what_it_holds(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("sigterm", answer_after(3, "Finished."))
    running = persai_stack()
    with running.client() as client:
        job_id = submit(client, "sigterm")
        wait_for_job(client, job_id, until=("running",))
        worker = running.workers[0]
        worker.signal(signal.SIGTERM)
        job = wait_for_job(client, job_id, timeout_s=30)
        assert worker.process.wait(30) == 0
    assert job["status"] == "succeeded"
    assert job["answer"] == "Finished."
    assert job["attempts"] == 1


def test_jobs_survive_a_redis_restart(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    redis_server: RedisServer,
) -> None:
    scripted_model.add_scenario("redis-restart", answer_after(5, "Still here."))
    running = persai_stack()
    with running.client() as client:
        job_id = submit(client, "redis-restart")
        queued_id = None
        wait_for_job(client, job_id, until=("running",))
        redis_server.stop()
        down = client.get(f"/api/v1/investigations/{job_id}")
        assert down.status_code == 503
        assert down.json()["error"]["type"] == "store_unavailable"
        redis_server.start()
        queued_id = submit(client, "redis-restart")
        job = wait_for_job(client, job_id, timeout_s=60)
        second = wait_for_job(client, queued_id, timeout_s=60)
    assert job["status"] == "succeeded", running.logs()
    assert second["status"] == "succeeded"


def test_event_streams_resume_from_every_position(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario(
        "resume",
        [
            {"tool_calls": [{"name": "execute_range_query", "arguments": {"query": "up"}}]},
            {"text": "One, two, three, four.", "chunk_delay_s": 0.06},
        ],
    )
    running = persai_stack()
    with running.client() as client:
        job_id = submit(client, "resume")
        url = f"/api/v1/investigations/{job_id}/events"
        live = parse_sse(client.get(url).text)  # subscribed while it runs
        late = parse_sse(client.get(url).text)  # after it finished: the whole history
        assert live == late
        ids = [e["id"] for e in late]
        assert len(ids) == len(set(ids)) >= 7
        for position, event_id in enumerate(ids):
            resumed = parse_sse(client.get(url, headers={"Last-Event-ID": event_id}).text)
            assert resumed == late[position + 1 :] or (position == len(ids) - 1 and resumed == [])
        bad = client.get(url, headers={"Last-Event-ID": "yesterday"})
        assert bad.status_code == 400


def test_each_limit_has_a_clear_error(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    running = persai_stack(
        workers=0, PERSAI_MAX_RUNNING_PER_USER="2", PERSAI_SUBMISSIONS_PER_MINUTE="3"
    )
    with running.client() as client:
        submit(client, "limits")
        submit(client, "limits")
        third = client.post(
            "/api/v1/investigations", json={"question": "q", "datasource": DATASOURCE}
        )
        assert third.status_code == 429
        assert "unfinished investigations" in third.json()["error"]["message"]
        assert int(third.headers["retry-after"]) > 0
        fourth = client.post(
            "/api/v1/investigations", json={"question": "q", "datasource": DATASOURCE}
        )
        assert fourth.status_code == 429
        assert "submissions in a minute" in fourth.json()["error"]["message"]
        assert 0 < int(fourth.headers["retry-after"]) <= 60


def test_queue_depth_and_events_per_job_are_bounded(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    calls = [{"name": "execute_range_query", "arguments": {"query": "up"}}] * 8
    scripted_model.add_scenario("chatty", [{"tool_calls": calls}, {"text": "done"}])
    running = persai_stack(workers=0, PERSAI_MAX_QUEUE_DEPTH="1", PERSAI_MAX_EVENTS_PER_JOB="12")
    with running.client() as client:
        job_id = submit(client, "chatty")
        full = client.post(
            "/api/v1/investigations", json={"question": "q", "datasource": DATASOURCE}
        )
        assert full.status_code == 503
        assert "queue is full" in full.json()["error"]["message"]
        assert full.headers["retry-after"]
        running.start_worker()
        job = wait_for_job(client, job_id, timeout_s=60)
    assert job["status"] == "failed"
    assert "more events than the limit" in str(job["error"])
