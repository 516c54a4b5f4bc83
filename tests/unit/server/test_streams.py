import asyncio
from collections.abc import AsyncIterator

import fakeredis
import pytest

from persai.errors import InvalidRequest
from persai.jobs import Event, Job, JobStatus, JobStore, keys
from persai.server.stream_slots import StreamSlots
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


@pytest.fixture
def hub(store: JobStore) -> EventHub:
    return EventHub(store, StreamSlots(store._redis, per_user=100), store._redis)


async def collect(hub: EventHub, after: str = "0") -> list[Event]:
    return [event async for event in hub.follow("j", after)]


async def finish(store: JobStore) -> list[Event]:
    """Cancel the job (its stream ends with `done`); its whole stream."""
    job = await store.get("j")
    assert job is not None
    await store.emit("j", "message_delta", {"text": "partial"})
    await store.transition(job, JobStatus.CANCELLED, (JobStatus.QUEUED,))
    return await store.read_events("j", "0", block_ms=None)


async def test_many_subscribers_get_every_event_in_order_with_one_reader(
    store: JobStore, hub: EventHub
) -> None:
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


async def test_a_subscriber_that_leaves_frees_its_feed(hub: EventHub) -> None:
    task = asyncio.create_task(collect(hub))
    await asyncio.sleep(0.05)
    assert hub._feeds
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub._feeds == {}


async def test_resume_after_the_last_event_of_a_finished_job_ends_at_once(
    store: JobStore, hub: EventHub
) -> None:
    events = await finish(store)
    assert events[-1].event == "done"
    assert await asyncio.wait_for(collect(hub, events[-1].id), 2) == []


async def test_resume_within_a_finished_job_replays_the_rest_then_ends(
    store: JobStore, hub: EventHub
) -> None:
    events = await finish(store)
    assert [e.event for e in events] == ["status", "message_delta", "status", "done"]
    assert await asyncio.wait_for(collect(hub, events[0].id), 2) == events[1:]


async def test_a_gone_job_streams_what_is_stored_and_ends(store: JobStore, hub: EventHub) -> None:
    await store.emit("j", "message_delta", {"text": "a"})
    await store._redis.delete(keys.job("j"))  # its record expired; its stream, not yet
    events = await asyncio.wait_for(collect(hub), 2)
    assert [e.event for e in events] == ["status", "message_delta"]


@pytest.mark.parametrize(
    "given",
    [
        "yesterday",
        "1-2-3",
        "-1-0",
        "1732456789012",
        "1732456789012-0 ",
        "18446744073709551616-0",  # 2**64: Redis refuses it
        "0-18446744073709551616",
        "123456789012345678901-0",
    ],
)
async def test_a_malformed_last_event_id_is_refused(hub: EventHub, given: str) -> None:
    with pytest.raises(InvalidRequest, match="must be an event id"):
        await hub.resume_point("j", given)


async def test_a_last_event_id_past_the_stream_and_redis_clock_is_refused(
    store: JobStore, hub: EventHub
) -> None:
    seconds, _ = await store._redis.time()
    with pytest.raises(InvalidRequest, match="past the last event"):
        await hub.resume_point("j", f"{(int(seconds) + 60) * 1000}-0")
    with pytest.raises(InvalidRequest, match="past the last event"):
        await hub.resume_point("j", "18446744073709551615-18446744073709551615")


async def test_a_last_event_id_a_failover_lost_resumes_after_it(
    store: JobStore, hub: EventHub
) -> None:
    """An id a client was sent, then lost with the master: past the stream, not the clock."""
    newest = await store.last_event_id("j")
    milliseconds, _, sequence = newest.partition("-")
    lost = f"{milliseconds}-{int(sequence) + 1}"
    assert await hub.resume_point("j", lost) == lost
    while await hub._now_ms() <= int(milliseconds):  # noqa: ASYNC110 (Redis's clock moves on)
        await asyncio.sleep(0.001)
    later = await store.emit("j", "message_delta", {"text": "after the failover"})
    await store.emit("j", "done", {"status": "succeeded"})
    assert (await collect(hub, lost))[0].id == later


async def test_a_last_event_id_within_the_stream_resumes_there(
    store: JobStore, hub: EventHub
) -> None:
    newest = await store.last_event_id("j")
    assert await hub.resume_point("j", newest) == newest
    assert await hub.resume_point("j", "0") == "0-0"
    assert await hub.resume_point("j", None) == "0"
    assert await hub.resume_point("j", "") == "0"
    assert await hub.resume_point("j", "0-0") == "0-0"
