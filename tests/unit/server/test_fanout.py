import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from persai.jobs import Event, Job, JobStore
from persai.redis_client import connect
from persai.server import fanout
from persai.server.fanout import Lagged
from persai.server.stream_slots import StreamSlots
from persai.server.streams import EventHub
from tests.support.redis import RedisServer

pytestmark = pytest.mark.anyio

JOBS = [f"{n:032x}" for n in range(1, 31)]


async def _jobs(store: JobStore) -> None:
    for job_id in JOBS:
        job = Job(id=job_id, owner="o", question="q", datasource="/d", conversation_id="c")
        await store.create(job, None, 60)


@pytest.fixture
async def store() -> AsyncIterator[JobStore]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store = JobStore(redis, retention_s=60)
    await _jobs(store)
    yield store
    await redis.aclose()


def _hub(store: JobStore) -> EventHub:
    redis = store._redis
    return EventHub(store, StreamSlots(redis, per_user=1000), redis)


async def collect(hub: EventHub, job_id: str, after: str = "0") -> list[Event]:
    return [event async for event in hub.follow(job_id, after)]


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll `condition` (the hub's internals, which signal nothing) until it holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def drain(events: AsyncIterator[Event], into: list[Event]) -> None:
    async for event in events:
        into.append(event)


async def emit_all(store: JobStore, events: int) -> None:
    """`events` deltas to every job, interleaved, then `done` to each."""
    for i in range(events):
        for job_id in JOBS:
            await store.emit(job_id, "message_delta", {"text": f"{job_id[-2:]}:{i}"})
    for job_id in JOBS:
        await store.emit(job_id, "done", {"status": "succeeded"})


async def test_subscribers_of_many_jobs_each_get_their_jobs_events_in_order_once(
    store: JobStore,
) -> None:
    hub = _hub(store)
    tasks = {
        (job_id, n): asyncio.create_task(collect(hub, job_id)) for job_id in JOBS for n in range(5)
    }
    await until(lambda: hub.subscribers == len(tasks))
    assert len(hub._feeds) == len(JOBS)  # one feed per job, all read by the one pump
    await emit_all(store, 10)
    results = await asyncio.wait_for(asyncio.gather(*tasks.values()), 20)
    for (job_id, _), got in zip(tasks, results, strict=True):
        assert got == await store.read_events(job_id, "0", block_ms=None)
        assert len(got) == 12  # queued, 10 deltas, done
    assert hub._feeds == {}
    await hub.close()


async def test_a_job_followed_while_the_read_blocks_is_read_at_once(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job joined while the pump's read blocks wakes it instead of waiting for its end."""
    monkeypatch.setattr(fanout, "READ_BLOCK_MS", 600_000)
    hub = _hub(store)
    first = asyncio.create_task(collect(hub, JOBS[0]))
    await until(lambda: hub._pump._reading is not None)
    second = asyncio.create_task(collect(hub, JOBS[1]))
    await until(lambda: hub._pump._reading is not None and JOBS[1] in hub._pump._reading)
    await store.emit(JOBS[1], "done", {"status": "succeeded"})
    assert [e.event for e in await asyncio.wait_for(second, 10)] == ["status", "done"]
    await store.emit(JOBS[0], "done", {"status": "succeeded"})
    await asyncio.wait_for(first, 5)
    await hub.close()


async def test_a_slow_subscriber_is_dropped_and_resumes_while_the_others_get_everything(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "BUFFER_EVENTS", 5)
    hub = _hub(store)
    job_id = JOBS[0]
    fast = [asyncio.create_task(collect(hub, job_id)) for _ in range(3)]
    slow = hub.follow(job_id, "0")
    await until(lambda: hub.subscribers == 3)
    pending = asyncio.ensure_future(anext(slow))  # it joins, then reads nothing more
    await until(lambda: hub.subscribers == 4)
    feed = hub._pump.feeds[job_id]

    def caught_up(entry_id: str) -> bool:  # the fast ones took it; the slow one reads none
        waiting = sum(s._waiter is not None and not s._waiter.done() for s in feed.subscribers)
        return feed.cursor == entry_id and waiting == 3

    for i in range(20):
        entry_id = await store.emit(job_id, "message_delta", {"text": str(i)})
        await until(lambda: caught_up(entry_id))  # noqa: B023 (awaited within the iteration)
    await store.emit(job_id, "done", {"status": "succeeded"})
    expected = await store.read_events(job_id, "0", block_ms=None)
    assert all(got == expected for got in await asyncio.wait_for(asyncio.gather(*fast), 10))
    got = [await pending]
    with pytest.raises(Lagged):
        await drain(slow, got)
    assert got == expected[: len(got)]  # what it had buffered, in order
    assert 1 < len(got) < len(expected)
    resumed = await collect(hub, job_id, got[-1].id)  # as its client reconnects
    assert got + resumed == expected
    # a stream whose client cannot reconnect follows again by itself
    assert [e async for e in hub.follow_through(job_id, "0")] == expected
    await hub.close()


async def test_the_api_holds_one_reading_connection_whatever_the_subscribers(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path).start()
    redis = connect(server.url, patience_s=0.5, max_connections=50)
    try:
        store = JobStore(redis, retention_s=60)
        await _jobs(store)
        hub = EventHub(store, StreamSlots(redis, per_user=10_000), redis)
        tasks = [asyncio.create_task(collect(hub, j)) for j in JOBS for _ in range(20)]
        await until(lambda: hub.subscribers == len(tasks))
        await until(lambda: hub._pump._reading == frozenset(JOBS))
        blocked: list[Any] = []
        for _ in range(250):  # until the read is blocking in Redis
            clients = await redis.client_list()
            blocked = [c for c in clients if "b" in c["flags"]]
            if blocked:
                break
            await asyncio.sleep(0.02)
        assert len(blocked) == 1  # 600 subscribers, 30 jobs: one blocking read
        assert len(clients) <= 5  # that read, and what the others share
        await emit_all(store, 3)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 20)
        assert all(len(got) == 5 for got in results)  # queued, 3 deltas, done
        await hub.close()
    finally:
        await redis.aclose()
        server.stop()
