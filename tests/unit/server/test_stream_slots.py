import asyncio
from collections.abc import AsyncIterator

import anyio
import fakeredis
import pytest

from persai.errors import TooManyRequests
from persai.jobs import keys
from persai.server.stream_slots import LEASE_S, StreamSlots, holding

pytestmark = pytest.mark.anyio


class NetworkRedis(fakeredis.FakeAsyncRedis):
    """fakeredis answering after a trip through the event loop, as a real server does (a
    cancelled task's next await is where its cancellation lands)."""

    async def zrem(self, name: str, *values: str) -> int:  # type: ignore[override]
        await asyncio.sleep(0.01)
        return await super().zrem(name, *values)


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = NetworkRedis(decode_responses=True)
    yield client
    await client.aclose()


async def endless() -> AsyncIterator[int]:
    """A stream that never ends by itself (a job that is still queued)."""
    n = 0
    while True:
        yield n
        n += 1
        await asyncio.sleep(0.01)


async def test_a_user_past_the_limit_is_told_to_close_one(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    slots = StreamSlots(redis, per_user=2)
    await slots.claim("alice")
    await slots.claim("alice")
    with pytest.raises(TooManyRequests, match="2 event streams open") as refused:
        await slots.claim("alice")
    assert refused.value.retry_after_s
    await slots.claim("bob")  # each user has their own
    assert await slots.held("alice") == 2


async def test_replicas_share_the_count(redis: fakeredis.FakeAsyncRedis) -> None:
    one, other = StreamSlots(redis, per_user=2), StreamSlots(redis, per_user=2)
    await one.claim("alice")
    await other.claim("alice")
    with pytest.raises(TooManyRequests):
        await one.claim("alice")


async def test_a_stream_gives_its_slot_back_when_it_ends(redis: fakeredis.FakeAsyncRedis) -> None:
    slots = StreamSlots(redis, per_user=1)
    slot = await slots.claim("alice")
    assert [item async for item in holding(slot, _three())] == [0, 1, 2]
    assert await slots.held("alice") == 0
    await slots.claim("alice")


async def _three() -> AsyncIterator[int]:
    for n in range(3):
        yield n


async def test_a_client_that_leaves_gives_the_slot_back(redis: fakeredis.FakeAsyncRedis) -> None:
    slots = StreamSlots(redis, per_user=1)
    slot = await slots.claim("alice")

    async def consume() -> None:
        async for _ in holding(slot, endless()):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    assert await slots.held("alice") == 1
    task.cancel()  # what the server does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await slots.held("alice") == 0


async def test_a_cancel_scope_that_keeps_cancelling_still_lets_the_slot_go(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    """sse-starlette stops a stream by cancelling an anyio task group: every later await in
    that scope is cancelled too, except a shielded one."""
    slots = StreamSlots(redis, per_user=1)
    slot = await slots.claim("alice")
    with anyio.move_on_after(0.05):
        async for _ in holding(slot, endless()):
            pass
    assert await slots.held("alice") == 0


async def test_a_closed_stream_gives_the_slot_back(redis: fakeredis.FakeAsyncRedis) -> None:
    slots = StreamSlots(redis, per_user=1)
    stream = holding(await slots.claim("alice"), endless())
    assert await anext(stream) == 0
    await stream.aclose()  # closed while suspended at a yield (a failed send)
    assert await slots.held("alice") == 0


async def test_slots_of_a_crashed_replica_lapse(redis: fakeredis.FakeAsyncRedis) -> None:
    slots = StreamSlots(redis, per_user=1)
    await redis.zadd(keys.user_streams("alice"), {"lost": 1})  # its lease ended long ago
    await slots.claim("alice")
    assert await redis.zrange(keys.user_streams("alice"), 0, -1) != ["lost"]
    assert await slots.held("alice") == 1
    ttl_ms = await redis.pttl(keys.user_streams("alice"))
    assert 0 < ttl_ms <= LEASE_S * 1000  # the set itself goes with the last lease


async def test_renewing_extends_the_lease(redis: fakeredis.FakeAsyncRedis) -> None:
    slots = StreamSlots(redis, per_user=1)
    slot = await slots.claim("alice")
    key = keys.user_streams("alice")
    await redis.zadd(key, {slot.token: 1})  # about to lapse
    await slots.renew(slot)
    score = await redis.zscore(key, slot.token)
    assert score is not None
    assert score > 1
    with pytest.raises(TooManyRequests):
        await slots.claim("alice")
