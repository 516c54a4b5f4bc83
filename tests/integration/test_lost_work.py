"""Nothing accepted is lost: a 202 means the job runs, whatever happens to its queue message,
to Redis's replies, or to the worker that first took it."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from persai.jobs import keys
from persai.queue import QUEUE
from tests.support.jobs import DATASOURCE, FAST_RECOVERY, answer_after, parse_sse, submit
from tests.support.persai import PersAIStack, wait_for_job, wait_for_worker
from tests.support.redis import RedisServer
from tests.support.scripted_model import ScriptedModel
from tests.support.tcp_proxy import BlipProxy

SWEEP_QUICKLY = {**FAST_RECOVERY, "PERSAI_REQUEUE_GRACE_S": "1"}


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_job_whose_message_was_deleted_by_hand_still_finishes(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    redis_server: RedisServer,
) -> None:
    scripted_model.add_scenario("lost-message", answer_after(0, "Found anyway."))
    running = persai_stack(workers=0, PERSAI_MAX_RUNNING_PER_USER="1", **SWEEP_QUICKLY)
    peek = redis_server.client()
    with running.client() as client:
        job_id = submit(client, "lost-message")
        (raw,) = peek.lrange(QUEUE, 0, -1)
        tag = json.loads(raw)["properties"]["delivery_tag"]
        assert tag == peek.hget(keys.job(job_id), "message")  # its message, named in its record
        assert peek.lrem(QUEUE, 0, raw) == 1  # deleted by hand before any worker took it
        # while it waits it counts against its owner's unfinished investigations
        locked = client.post(
            "/api/v1/investigations", json={"question": "q", "datasource": DATASOURCE}
        )
        assert locked.status_code == 429

        running.start_worker()
        job = wait_for_job(client, job_id, timeout_s=60)
        assert job["status"] == "succeeded", running.logs()
        assert job["answer"] == "Found anyway."
        assert job["attempts"] == 1
        # and once it finished its owner is not locked out
        after = submit(client, "lost-message")
        assert wait_for_job(client, after, timeout_s=60)["status"] == "succeeded"
    assert "queued it again" in running.workers[0].log()
    peek.close()


@pytest.fixture
def blip_proxy(redis_server: RedisServer) -> Iterator[BlipProxy]:
    proxy = BlipProxy(redis_server.port)
    yield proxy
    proxy.close()


def test_a_redis_blip_while_a_job_is_stored_leaves_no_job_that_will_not_run(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    redis_server: RedisServer,
    blip_proxy: BlipProxy,
) -> None:
    scripted_model.add_scenario("blip", answer_after(0, "Ran."))
    # the API reaches Redis through the proxy; the workers directly
    running = persai_stack(workers=0, PERSAI_REDIS_URL=blip_proxy.url, **SWEEP_QUICKLY)
    peek = redis_server.client()
    with running.client() as client:
        first = submit(client, "blip")
        # the next job's write reaches Redis, but the replies are lost, the retries' too
        blip_proxy.blip_on(keys.ENQUEUED.encode(), window_s=3.0)
        failed = client.post(
            "/api/v1/investigations",
            json={"question": "[scenario:blip] And now?", "datasource": DATASOURCE},
        )
        assert blip_proxy.blips == 1
        assert failed.status_code == 503, failed.text
        assert failed.json()["error"]["type"] == "store_unavailable"
        _until(lambda: not blip_proxy.blipping(), 10, "the blip to end")

        # the write went through once, retries and all: the job exists, queued with one message
        listed = client.get("/api/v1/investigations").json()["items"]
        ids = {job["id"] for job in listed}
        assert first in ids
        assert len(ids) == 2
        assert peek.llen(QUEUE) == 2
        (second,) = ids - {first}

        running.env["PERSAI_REDIS_URL"] = redis_server.url
        running.start_worker()
        assert running.api is not None
        wait_for_worker(running.api.url)
        for job_id in (first, second):
            job = wait_for_job(client, job_id, timeout_s=60)
            assert job["status"] == "succeeded", running.logs()
        events = parse_sse(client.get(f"/api/v1/investigations/{second}/events").text)
    statuses = [json.loads(e["data"])["status"] for e in events if e["event"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    peek.close()


def test_a_stalled_worker_loses_its_job_to_the_worker_that_took_it_over(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("stall", [{"text": "Stale answer.", "delay_s": 4}])
    running = persai_stack(**FAST_RECOVERY)
    with running.client() as client:
        job_id = submit(client, "stall")
        _until(lambda: len(scripted_model.requests("stall")) == 1, 30, "the first model call")
        stalled = running.workers[0]
        stalled.signal(signal.SIGSTOP)  # past its lease, with its answer on the way
        try:
            scripted_model.add_scenario("stall", [{"text": "Fresh answer.", "delay_s": 3}])
            running.start_worker()

            def taken_over() -> bool:
                job = client.get(f"/api/v1/investigations/{job_id}").json()
                return bool(job["attempts"] == 2 and job["status"] == "running")

            _until(taken_over, 60, "another worker to take the job over")
        finally:
            stalled.signal(signal.SIGCONT)  # it wakes up with the stale answer at hand
        job = wait_for_job(client, job_id, timeout_s=60)
        events = parse_sse(client.get(f"/api/v1/investigations/{job_id}/events").text)
    assert job["status"] == "succeeded", running.logs()
    assert job["answer"] == "Fresh answer."
    assert job["attempts"] == 2
    taken = next(i for i, e in enumerate(events) if '"attempt": 2' in e["data"])
    assert "Stale" not in "".join(e["data"] for e in events[taken:])
    assert [e["event"] for e in events].count("done") == 1
    told = ("this attempt is over here", "took this job over", "outcome is not stored")
    assert any(line in stalled.log() for line in told), stalled.log()
