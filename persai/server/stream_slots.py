"""How many event streams each user holds open, counted in Redis across every API replica.

A stream follows a job with a blocking Redis read and a connection held by the API, so a user
may hold only so many at once. Each open stream holds a slot: a member of the user's sorted set
scored by the end of its lease (Unix ms, Redis's clock). The stream renews its lease while it
runs and gives the slot back when it ends or its client leaves; the slots of a replica that
died without giving them back lapse with their leases.

Counted in Redis rather than in each process: a load balancer spreads one user's streams over
the replicas, and a count per process would let a user hold the limit once per replica. The
cost is a round trip when a stream opens, one when it ends, and one per RENEW_S while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType

import anyio
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from persai.errors import PersAIError, TooManyRequests
from persai.jobs import keys, redis_errors

log = logging.getLogger(__name__)

LEASE_S = 60.0
"""A slot lapses this long after its stream last renewed it."""
RENEW_S = LEASE_S / 3
RELEASE_TIMEOUT_S = 2.0
"""How long giving a slot back may take (on a disconnect, shielded from the cancellation)."""
RETRY_AFTER_S = 10

# KEYS: the owner's slots. ARGV: the slot, the lease (ms), the limit (0: none, to renew).
# Takes (or renews) this slot unless the owner holds the limit of live ones, then drops the
# lapsed ones. ZADD is the first write: the one Redis refuses when it is out of memory (once a
# script has written, Redis lets the rest of it through).
_CLAIM = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('ZCOUNT', KEYS[1], '(' .. now_ms, '+inf') >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class StreamSlots:
    """At most `per_user` open streams per user, across all API replicas."""

    def __init__(self, redis: aioredis.Redis, *, per_user: int) -> None:
        self._redis = redis
        self.per_user = per_user
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, owner: str) -> StreamSlot:
        """A slot for one more stream of `owner`'s, or TooManyRequests (429)."""
        slot = StreamSlot(self, owner, uuid.uuid4().hex)
        if not await self._hold(slot, limit=self.per_user):
            raise TooManyRequests(
                f"you have {self.per_user} event streams open (the limit); close one "
                "(or wait for one of them to end) and try again",
                retry_after_s=RETRY_AFTER_S,
            )
        return slot

    async def _hold(self, slot: StreamSlot, *, limit: int) -> bool:
        args: list[str | int] = [slot.token, int(LEASE_S * 1000), limit]
        async with redis_errors():
            return bool(await self._claim(keys=[keys.user_streams(slot.owner)], args=args))

    async def held(self, owner: str) -> int:
        """How many slots `owner` holds now (lapsed ones included until the next claim)."""
        async with redis_errors():
            return int(await self._redis.zcard(keys.user_streams(owner)))

    async def renew(self, slot: StreamSlot) -> None:
        """Extend the slot's lease (taking it again should it have lapsed meanwhile)."""
        await self._hold(slot, limit=0)

    async def give_back(self, slot: StreamSlot) -> None:
        async with redis_errors():
            await self._redis.zrem(keys.user_streams(slot.owner), slot.token)


class StreamSlot:
    """One open stream's slot: `async with` it around the streaming, which renews it, and
    gives it back at the end however the streaming ends (the client leaving included)."""

    def __init__(self, slots: StreamSlots, owner: str, token: str) -> None:
        self._slots = slots
        self.owner = owner
        self.token = token
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StreamSlot:
        self._renewer = asyncio.create_task(self._renew())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        await self.release()

    async def release(self) -> None:
        """Give the slot back now; shielded, so that a cancelled stream still does it. Should
        Redis not answer, the slot lapses with its lease."""
        with anyio.move_on_after(RELEASE_TIMEOUT_S, shield=True):
            try:
                await self._slots.give_back(self)
            except PersAIError as error:
                log.warning("stream slot of %s not given back: %s", self.owner, error.message)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            with contextlib.suppress(PersAIError, RedisError):
                await self._slots.renew(self)


async def holding[T](slot: StreamSlot, stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """`stream`, with `slot` held (and renewed) while it runs and given back when it ends, its
    client leaves or it fails; `stream` is closed first."""
    async with slot:
        try:
            async for item in stream:
                yield item
        finally:
            if isinstance(stream, AsyncGenerator):
                await stream.aclose()
