import asyncio
from collections.abc import AsyncIterator

import fakeredis
import pytest

from persai.errors import NotFound
from persai.jobs import Job, JobStatus, JobStore, Step, keys


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
    assert await store.load("alice", 1) == (1, 1, 1)
    running = job()
    assert await store.transition(running, JobStatus.RUNNING, (JobStatus.QUEUED,))
    assert not await redis.sismember(keys.QUEUED, "j1")
    assert await redis.sismember(keys.RUNNING, "j1")
    assert await store.orphans() == ["j1"]  # no lease
    await store.hold(["j1"], "worker-1", 10)
    assert await store.orphans() == []
    assert await store.transition(running, JobStatus.SUCCEEDED, (JobStatus.RUNNING,))
    assert not await redis.sismember(keys.RUNNING, "j1")
    assert await store.load("alice", 1) == (0, 0, 2)
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
