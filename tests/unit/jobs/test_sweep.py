"""The sweep of queued jobs whose queue message was lost: it queues them again, and only them."""

import asyncio
import json
import time
from collections.abc import AsyncIterator

import fakeredis
import pytest

from persai.jobs import Job, JobStatus, JobStore, LostJobSweep, keys
from persai.queue import QUEUE, UNACKED, UNACKED_INDEX, QueueMessage

GRACE_S = 0.2

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


class Messages:
    """New queue messages, in kombu's envelope (as the Publisher builds them), counted."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self, job_id: str) -> QueueMessage:
        self.made += 1
        tag = f"{job_id}-tag-{self.made}"
        envelope = {"body": job_id, "properties": {"delivery_tag": tag, "priority": 0}}
        return QueueMessage(tag=tag, raw=json.dumps(envelope))


def job(job_id: str, owner: str = "alice") -> Job:
    return Job(id=job_id, owner=owner, question="q", datasource="/d", conversation_id="c")


async def queued(store: JobStore, messages: Messages, *job_ids: str) -> dict[str, QueueMessage]:
    sent = {job_id: messages(job_id) for job_id in job_ids}
    for job_id, message in sent.items():
        await store.create(job(job_id), None, 60, message)
    return sent


async def jobs_in_queue(redis: fakeredis.FakeAsyncRedis) -> list[str]:
    return sorted(json.loads(raw)["body"] for raw in await redis.lrange(QUEUE, 0, -1))


async def test_a_job_whose_message_was_deleted_is_queued_again_once(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    store, messages = JobStore(redis, retention_s=60), Messages()
    sweep = LostJobSweep(redis, grace_s=GRACE_S)
    sent = await queued(store, messages, "lost", "waiting")
    await redis.lrem(QUEUE, 0, sent["lost"].raw)  # by hand
    assert await sweep.sweep(messages) == []  # within the grace period: left alone
    await asyncio.sleep(GRACE_S * 1.5)

    assert await sweep.sweep(messages) == ["lost"]
    assert await jobs_in_queue(redis) == ["lost", "waiting"]  # "waiting" was not doubled
    assert await sweep.sweep(messages) == []  # its new message is there now
    events = await store.read_events("lost", "0", block_ms=None)
    assert events[-1].data == {
        "status": "queued",
        "reason": "its queue message was lost; queued again",
    }


async def test_messages_deep_in_a_long_queue_are_found(redis: fakeredis.FakeAsyncRedis) -> None:
    store, messages = JobStore(redis, retention_s=60), Messages()
    ids = [f"job-{n:03}" for n in range(250)]
    sent = await queued(store, messages, *ids)
    await redis.lrem(QUEUE, 0, sent["job-120"].raw)
    await asyncio.sleep(GRACE_S * 1.5)
    # the oldest hundred are looked at: the lost one is beyond them, then among them
    sweep = LostJobSweep(redis, grace_s=GRACE_S)
    assert await sweep.sweep(messages) == []
    await redis.zrem(keys.ENQUEUED, *ids[:100])  # as if they had started
    assert await sweep.sweep(messages) == ["job-120"]
    assert len(await jobs_in_queue(redis)) == 250


async def test_a_message_held_by_a_worker_counts_until_it_held_it_too_long(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    store, messages = JobStore(redis, retention_s=60), Messages()
    sweep = LostJobSweep(redis, grace_s=GRACE_S)
    sent = await queued(store, messages, "held", "held-long")
    for job_id, taken_at in (("held", time.time() + 60), ("held-long", time.time() - 60)):
        # taken as the workers' consumer takes a message: out of the list, into unacked
        await redis.lrem(QUEUE, 0, sent[job_id].raw)
        await redis.hset(UNACKED, sent[job_id].tag, json.dumps([sent[job_id].raw, "", QUEUE]))
        await redis.zadd(UNACKED_INDEX, {sent[job_id].tag: taken_at})
    await asyncio.sleep(GRACE_S * 1.5)

    # "held-long" was taken a minute ago by a worker that never started it (it died)
    assert await sweep.sweep(messages) == ["held-long"]
    assert await jobs_in_queue(redis) == ["held-long"]
    assert await redis.hkeys(UNACKED) == [sent["held"].tag]  # the dead worker's copy is gone


async def test_jobs_that_started_or_never_had_a_message(redis: fakeredis.FakeAsyncRedis) -> None:
    store, messages = JobStore(redis, retention_s=60), Messages()
    sweep = LostJobSweep(redis, grace_s=GRACE_S)
    await store.create(job("unsent"), None, 60)  # stored without a message
    sent = await queued(store, messages, "started")
    await redis.lrem(QUEUE, 0, sent["started"].raw)
    started = await store.get("started")
    assert started is not None
    started.attempts = 1
    assert await store.start(started, "worker-1", 10)
    await asyncio.sleep(GRACE_S * 1.5)

    assert await sweep.sweep(messages) == ["unsent"]
    assert await jobs_in_queue(redis) == ["unsent"]
    assert await redis.zrange(keys.ENQUEUED, 0, -1) == ["unsent"]


async def test_a_job_whose_message_was_lost_does_not_lock_its_owner_out(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    store, messages = JobStore(redis, retention_s=60), Messages()
    sent = await queued(store, messages, "lost")
    await redis.delete(QUEUE)
    assert await redis.scard(keys.user_active("alice")) == 1  # it counts while it waits
    await asyncio.sleep(GRACE_S * 1.5)
    assert await LostJobSweep(redis, grace_s=GRACE_S).sweep(messages) == ["lost"]

    # a worker takes the new message and runs the job to its end
    (raw,) = await redis.lrange(QUEUE, 0, -1)
    assert raw != sent["lost"].raw
    running = await store.get("lost")
    assert running is not None
    running.attempts = 1
    assert await store.start(running, "worker-1", 10)
    assert await store.transition(running, JobStatus.SUCCEEDED, (JobStatus.RUNNING,), in_attempt=1)
    assert await redis.scard(keys.user_active("alice")) == 0
