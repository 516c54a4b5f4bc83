"""Notifications waiting to go out, in Redis: delivered at least once, whatever restarts.

persai:alert:pending            sorted set: alert jobs not ended yet (by when they were made);
                                written before the job itself, so no ended job is missed
persai:alert:outbox             sorted set: delivery ids by when each is due (Unix s, Redis's
                                clock); a delivery being attempted is due again when its lease
                                ends, so one whose worker died is taken by another
persai:alert:delivery:{id}      hash: job, receiver, destination, attempt, first (Unix s)

An ended job leaves `pending` and enters the outbox (one delivery per destination) in one step:
of several workers that see it end, one moves it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from persai.jobs import keys, redis_errors

PENDING = f"{keys.PREFIX}:alert:pending"
OUTBOX = f"{keys.PREFIX}:alert:outbox"
MISSING_JOB_GRACE_S = 3600
"""A pending job id that was never stored (its API replica failed) is dropped after an hour."""


def delivery_key(delivery_id: str) -> str:
    return f"{keys.PREFIX}:alert:delivery:{delivery_id}"


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: pending, outbox. ARGV: job id, receiver, delivery key prefix, then (delivery id,
# destination) pairs. Moves the ended job's notifications into the outbox, once.
_RELEASE = (
    _NOW
    + """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('HSET', ARGV[3] .. ARGV[i], 'job', ARGV[1], 'receiver', ARGV[2],
    'destination', ARGV[i + 1], 'attempt', 0, 'first', now)
  redis.call('ZADD', KEYS[2], now, ARGV[i])
end
return 1
"""
)

# KEYS: outbox. ARGV: the most to take, lease (s), delivery key prefix. Takes the due
# deliveries, each due again when its lease ends; returns [id, fields as JSON, ...].
_TAKE = (
    _NOW
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local taken = {}
for _, id in ipairs(due) do
  local key = ARGV[3] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
    redis.call('HINCRBY', key, 'attempt', 1)
    local fields = redis.call('HGETALL', key)
    taken[#taken + 1] = id
    taken[#taken + 1] = cjson.encode(fields)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
taken[#taken + 1] = tostring(now)
return taken
"""
)

# KEYS: outbox, delivery. ARGV: id, delay (s; '' to finish it). A failed attempt waits its
# backoff; a finished delivery (sent, or given up) leaves the outbox.
_SETTLE = (
    _NOW
    + """
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
return 1
"""
)


@dataclass(frozen=True)
class Delivery:
    id: str
    job_id: str
    receiver: str
    destination: str
    attempt: int
    age_s: float
    """Since the job's notifications entered the outbox."""


class Outbox:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._release = redis.register_script(_RELEASE)
        self._take = redis.register_script(_TAKE)
        self._settle = redis.register_script(_SETTLE)

    async def expect(self, job_id: str) -> None:
        """An alert job is about to be stored: notify when it ends."""
        async with redis_errors():
            await self._redis.zadd(PENDING, {job_id: await self._now()})

    async def forget(self, job_id: str) -> None:
        """The job was not stored after all."""
        async with redis_errors():
            await self._redis.zrem(PENDING, job_id)

    async def pending(self, limit: int = 500) -> list[tuple[str, float]]:
        async with redis_errors():
            found = await self._redis.zrange(PENDING, 0, limit - 1, withscores=True)
        pairs = cast(list[tuple[str, float]], found)
        return [(str(job), float(at)) for job, at in pairs]

    async def release(self, job_id: str, receiver: str, destinations: list[str]) -> bool:
        """The job ended: queue one delivery per destination (once; whether this call did)."""
        argv: list[str] = [job_id, receiver, delivery_key("")]
        for destination in destinations:
            argv += [uuid.uuid4().hex, destination]
        async with redis_errors():
            return bool(await self._release(keys=[PENDING, OUTBOX], args=argv))

    async def take(self, limit: int, lease_s: float) -> list[Delivery]:
        async with redis_errors():
            reply = await self._take(keys=[OUTBOX], args=[limit, lease_s, delivery_key("")])
        now = float(reply[-1])
        taken = []
        for delivery_id, encoded in zip(reply[:-1:2], reply[1:-1:2], strict=True):
            flat: list[Any] = json.loads(encoded)
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            taken.append(
                Delivery(
                    id=str(delivery_id),
                    job_id=fields["job"],
                    receiver=fields["receiver"],
                    destination=fields["destination"],
                    attempt=int(fields["attempt"]),
                    age_s=now - float(fields["first"]),
                )
            )
        return taken

    async def retry(self, delivery: Delivery, delay_s: float) -> None:
        await self._settled(delivery, repr(delay_s))

    async def done(self, delivery: Delivery) -> None:
        await self._settled(delivery, "")

    async def _settled(self, delivery: Delivery, delay: str) -> None:
        names = [OUTBOX, delivery_key(delivery.id)]
        async with redis_errors():
            await self._settle(keys=names, args=[delivery.id, delay])

    async def _now(self) -> float:
        seconds, micros = await self._redis.time()
        return float(seconds) + float(micros) / 1e6
