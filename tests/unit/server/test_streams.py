import asyncio
from collections.abc import AsyncIterator

import fakeredis
import pytest

from persai.jobs import Event, Job, JobStatus, JobStore
from persai.server.streams import EventHub

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store() -> AsyncIterator[JobStore]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    job = Job(id="j", owner="o", question="q", datasource="/d", conversation_id="c")
    store = JobStore(redis, retention_s=60)
    await store.create(job, None, 60)
    yield store
    await redis.aclose()


async def collect(hub: EventHub, after: str = "0") -> list[Event]:
    return [event async for event in hub.follow("j", after)]


async def test_many_subscribers_get_every_event_in_order_with_one_reader(store: JobStore) -> None:
    hub = EventHub(store)
    early = [asyncio.create_task(collect(hub)) for _ in range(50)]
    await asyncio.sleep(0.05)
    assert len(hub._feeds) == 1  # one Redis reader for all of them
    for i in range(20):
        await store.emit("j", "message_delta", {"text": str(i)})
    late = asyncio.create_task(collect(hub))  # joins midway: history first, then live
    await asyncio.sleep(0.05)
    await store.emit("j", "done", {"status": "succeeded"})
    results = await asyncio.wait_for(asyncio.gather(*early, late), 10)
    expected = await store.read_events("j", "0", block_ms=None)
    assert len(expected) == 22
    assert all(result == expected for result in results)
    assert hub._feeds == {}  # the last subscriber stopped the reader


async def test_a_subscriber_that_leaves_frees_its_feed(store: JobStore) -> None:
    hub = EventHub(store)
    task = asyncio.create_task(collect(hub))
    await asyncio.sleep(0.05)
    assert hub._feeds
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub._feeds == {}


async def test_resume_after_the_last_event_of_a_finished_job_ends_at_once(
    store: JobStore,
) -> None:
    job = await store.get("j")
    assert job is not None
    await store.transition(job, JobStatus.SUCCEEDED, (JobStatus.QUEUED,))
    await store.emit("j", "done", {"status": "succeeded"})
    events = await store.read_events("j", "0", block_ms=None)
    hub = EventHub(store)
    assert await asyncio.wait_for(collect(hub, events[-1].id), 2) == []
