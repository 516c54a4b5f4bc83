import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import fakeredis
import pytest

from persai.errors import NotFound, Superseded
from persai.jobs import Job, JobStatus, JobStore, Step, keys, utcnow
from persai.jobs.store import INDEX_SLACK_S
from persai.queue import QUEUE, QueueMessage


@pytest.fixture
async def store() -> AsyncIterator[JobStore]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield JobStore(redis, retention_s=60)
    await redis.aclose()


def job(owner: str = "alice", job_id: str = "j1") -> Job:
    return Job(id=job_id, owner=owner, question="q", datasource="/d", conversation_id="c")


pytestmark = pytest.mark.anyio


async def test_only_one_of_two_racing_transitions_wins(store: JobStore) -> None:
    await store.create(job(), None, 60)
    a, b = job(), job()
    results = await asyncio.gather(
        store.transition(a, JobStatus.RUNNING, (JobStatus.QUEUED,)),
        store.transition(b, JobStatus.CANCELLED, (JobStatus.QUEUED,)),
    )
    assert sorted(results) == [False, True]
    stored = await store.get("j1")
    assert stored is not None
    assert stored.status in (JobStatus.RUNNING, JobStatus.CANCELLED)
    events = await store.read_events("j1", "0", block_ms=None)
    assert [e.data["status"] for e in events] == ["queued", stored.status.value]


async def test_status_sets_follow_the_job_and_finished_jobs_expire(store: JobStore) -> None:
    await store.create(job(), "sealed", 60)
    redis = store._redis
    assert await redis.sismember(keys.QUEUED, "j1")
    assert await redis.smembers(keys.user_active("alice")) == {"j1"}
    running = job()
    assert await store.transition(running, JobStatus.RUNNING, (JobStatus.QUEUED,))
    assert not await redis.sismember(keys.QUEUED, "j1")
    assert await redis.sismember(keys.RUNNING, "j1")
    assert await store.orphans() == ["j1"]  # no lease
    await store.hold(["j1"], "worker-1", 10)
    assert await store.orphans() == []
    assert await store.transition(running, JobStatus.SUCCEEDED, (JobStatus.RUNNING,))
    assert not await redis.sismember(keys.RUNNING, "j1")
    assert await redis.scard(keys.user_active("alice")) == 0
    assert await store.credentials("j1") is None  # deleted when the job ends
    assert 0 < await redis.ttl(keys.job("j1")) <= 60
    assert not await store.transition(running, JobStatus.RUNNING, (JobStatus.QUEUED,))


async def test_another_users_job_is_not_found(store: JobStore) -> None:
    await store.create(job(owner="alice"), None, 60)
    assert (await store.get_for("alice", "j1")).owner == "alice"
    with pytest.raises(NotFound):
        await store.get_for("bob", "j1")
    with pytest.raises(NotFound):
        await store.get_for("alice", "missing")
    jobs, total = await store.list_for("bob", offset=0, limit=10)
    assert (jobs, total) == ([], 0)


async def test_events_resume_after_an_id(store: JobStore) -> None:
    await store.create(job(), None, 60)
    for i in range(3):
        await store.emit("j1", "message_delta", {"text": str(i)})
    events = await store.read_events("j1", "0", block_ms=None)
    after = await store.read_events("j1", events[1].id, block_ms=None)
    assert after == events[2:]


async def test_progress_and_its_event_are_stored_together(store: JobStore) -> None:
    created = job()
    first = await store.create(created, None, 60)
    created.steps.append(Step(call_id="c1", tool="execute_range_query", arguments={"q": "up"}))
    entry = await store.save_and_emit(created, "tool_call", {"call_id": "c1"})
    stored = await store.get("j1")
    assert stored is not None
    assert stored.status is JobStatus.QUEUED  # the status is left as it was
    assert [s.call_id for s in stored.steps] == ["c1"]
    events = await store.read_events("j1", first, block_ms=None)
    assert [(e.id, e.event, e.data) for e in events] == [(entry, "tool_call", {"call_id": "c1"})]


async def test_a_job_to_run_comes_with_its_cancel_flag(store: JobStore) -> None:
    assert await store.get_to_run("nope") == (None, False)
    await store.create(job(), None, 60)
    found, cancelled = await store.get_to_run("j1")
    assert found is not None
    assert (found.id, cancelled) == ("j1", False)
    await store.request_cancel("j1")
    assert (await store.get_to_run("j1"))[1] is True


async def test_the_job_index_drops_jobs_whose_records_expired(store: JobStore) -> None:
    old = job(job_id="old")
    old.created_at = utcnow() - timedelta(seconds=60 + INDEX_SLACK_S + 5)  # retention is 60 s
    await store.create(old, None, 60)
    await store._redis.delete(keys.job("old"))  # its record expired long ago
    assert await store._redis.zcard(keys.user_jobs("alice")) == 1
    await store.create(job(job_id="new"), None, 60)  # the next write tidies the index
    assert await store._redis.zrange(keys.user_jobs("alice"), 0, -1) == ["new"]
    ttl = await store._redis.ttl(keys.user_jobs("alice"))
    assert 60 < ttl <= 60 + INDEX_SLACK_S  # the index goes with the last of its jobs


async def test_listing_leaves_out_and_forgets_expired_jobs(store: JobStore) -> None:
    for job_id in ("a", "b", "c"):
        await store.create(job(job_id=job_id), None, 60)
    await store._redis.delete(keys.job("b"))  # expired, but still in the index
    jobs, total = await store.list_for("alice", offset=0, limit=10)
    assert ([j.id for j in jobs], total) == (["c", "a"], 2)
    assert await store._redis.zcard(keys.user_jobs("alice")) == 2


# Nothing accepted is lost: the queue message goes with the job; a stale attempt writes nothing


def message(tag: str = "tag-1", job_id: str = "j1") -> QueueMessage:
    return QueueMessage(tag=tag, raw=f'{{"job": "{job_id}", "delivery_tag": "{tag}"}}')


async def test_a_job_is_stored_with_its_queue_message_in_one_step(store: JobStore) -> None:
    redis = store._redis
    await store.create(job(), None, 60, message())
    assert await redis.lrange(QUEUE, 0, -1) == [message().raw]
    assert await redis.hget(keys.job("j1"), "message") == "tag-1"
    assert await redis.zscore(keys.ENQUEUED, "j1") is not None  # when it was sent


async def test_a_create_retried_after_its_reply_was_lost_writes_nothing_twice(
    store: JobStore,
) -> None:
    # the client retries a command whose connection broke: it may have run already
    first = await store.create(job(), "sealed", 60, message())
    again = await store.create(job(), "sealed", 60, message("tag-2"))
    assert again == first
    assert len(await store.read_events("j1", "0", block_ms=None)) == 1
    assert await store._redis.llen(QUEUE) == 1
    assert await store._redis.smembers(keys.user_active("alice")) == {"j1"}
    assert await store._redis.smembers(keys.QUEUED) == {"j1"}


async def _start(store: JobStore, worker: str, lease_s: float = 10) -> Job | None:
    """What a worker's runner does: read the job, start its next attempt with its lease."""
    found = await store.get("j1")
    assert found is not None
    found.attempts += 1
    return found if await store.start(found, worker, lease_s) else None


async def test_a_stalled_attempt_writes_nothing_once_another_worker_took_the_job_over(
    store: JobStore,
) -> None:
    redis = store._redis
    await store.create(job(), None, 60, message())
    stale = await _start(store, "worker-a")
    assert stale is not None
    assert stale.attempts == 1
    await store.emit("j1", "message_delta", {"text": "early"}, attempt=1)  # its own: fine

    await redis.delete(keys.lease("j1"))  # worker-a stalled past its lease
    lost = await store.get("j1")
    assert lost is not None
    assert await store.transition(
        lost,
        JobStatus.QUEUED,
        (JobStatus.RUNNING,),
        in_attempt=1,
        lease_lapsed=True,
        message=message("tag-2"),
    )
    assert await redis.lrange(QUEUE, 0, 0) == [message("tag-2").raw]  # queued with it
    fresh = await _start(store, "worker-b")
    assert fresh is not None
    assert fresh.attempts == 2

    # worker-a wakes up: its progress, its lease and its outcome are all refused
    with pytest.raises(Superseded):
        await store.emit("j1", "message_delta", {"text": "stale"}, attempt=1)
    stale.steps.append(Step(call_id="s", tool="execute_range_query", arguments={}))
    with pytest.raises(Superseded):
        await store.save_and_emit(stale, "tool_call", {"call_id": "s"}, attempt=1)
    assert await store.renew({"j1": 1}, "worker-a", 10) == ["j1"]
    assert await redis.get(keys.lease("j1")) == "worker-b"
    stale.answer = "stale answer"
    assert not await store.transition(
        stale,
        JobStatus.SUCCEEDED,
        (JobStatus.RUNNING,),
        in_attempt=1,
        events=[("answer", {"text": "stale answer"})],
    )

    fresh.answer = "fresh answer"
    assert await store.transition(
        fresh,
        JobStatus.SUCCEEDED,
        (JobStatus.RUNNING,),
        in_attempt=2,
        events=[("answer", {"text": "fresh answer"})],
    )
    ended = await store.get("j1")
    assert ended is not None
    assert (ended.status, ended.answer, ended.attempts, ended.steps) == (
        JobStatus.SUCCEEDED,
        "fresh answer",
        2,
        [],
    )
    events = await store.read_events("j1", "0", block_ms=None)
    assert "stale" not in json.dumps([e.data for e in events])
    assert [e.event for e in events][-3:] == ["answer", "status", "done"]


async def test_a_lost_worker_is_not_declared_lost_once_it_renewed_its_lease(
    store: JobStore,
) -> None:
    await store.create(job(), None, 60, message())
    running = await _start(store, "worker-a")
    assert running is not None
    seen = await store.get("j1")  # the reaper saw no lease...
    assert seen is not None
    assert await store.renew({"j1": 1}, "worker-a", 10) == []  # ...then the worker renewed it
    assert not await store.transition(
        seen, JobStatus.QUEUED, (JobStatus.RUNNING,), in_attempt=1, lease_lapsed=True
    )
    still = await store.get("j1")
    assert still is not None
    assert still.status is JobStatus.RUNNING


async def test_a_worker_with_an_old_view_of_the_job_does_not_start_it(store: JobStore) -> None:
    await store.create(job(), None, 60, message())
    late = await store.get("j1")  # read, then overtaken by a whole attempt
    assert late is not None
    first = await _start(store, "worker-a")
    assert first is not None
    await store._redis.delete(keys.lease("j1"))
    assert await store.transition(
        first, JobStatus.QUEUED, (JobStatus.RUNNING,), in_attempt=1, lease_lapsed=True
    )
    late.attempts += 1  # it thinks this is attempt 1, which already ran
    assert not await store.start(late, "worker-b", 10)
    again = await _start(store, "worker-b")
    assert again is not None
    assert again.attempts == 2


async def test_credentials_refreshed_after_the_job_ended_are_not_sealed_again(
    store: JobStore,
) -> None:
    redis = store._redis
    await store.create(job(), "sealed", 60, message())
    running = await _start(store, "worker-a")
    assert running is not None
    assert await store.store_credentials("j1", "refreshed", 60)  # while it runs: kept
    assert await store.credentials("j1") == "refreshed"
    assert await store.transition(running, JobStatus.SUCCEEDED, (JobStatus.RUNNING,))
    assert await store.credentials("j1") is None  # deleted with its end

    assert not await store.store_credentials("j1", "late", 86_400)  # a refresh ending later
    assert not await store.store_credentials("expired", "late", 86_400)  # no record at all
    assert [key async for key in redis.scan_iter(match="*:credentials")] == []


async def test_a_worker_is_seen_by_its_heartbeat_until_it_stops(store: JobStore) -> None:
    redis = store._redis
    await redis.hset(keys.WORKERS, "stopped-yesterday", repr(time.time() - 2 * 86_400))
    assert await store.workers_seen(within_s=0.5) == 0
    await store.beat("worker-a")
    assert await store.workers_seen(within_s=0.5) == 1
    assert await redis.hkeys(keys.WORKERS) == ["worker-a"]  # the long-silent one is forgotten
    await asyncio.sleep(0.6)  # worker-a stopped
    assert await store.workers_seen(within_s=0.5) == 0
