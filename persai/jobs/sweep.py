"""The sweep of queued jobs whose queue message was lost.

A job is queued with its message in one step (`JobStore`), yet a message can still go: deleted
by hand, popped by a worker that died before kombu recorded it as unacknowledged, held
unacknowledged by a worker that died before starting the job, or acknowledged by a worker that
gave up on it while Redis was away. Such a job would stay `queued` for ever and count against
its owner's unfinished jobs. Workers sweep for them (one at a time, under the reaper's lock)
and queue each again with a new message.

How it knows: each queued job records the delivery tag of its message (`message` in its hash)
and when it was sent (`persai:enqueued`). A message is in the queue's list, or among kombu's
unacknowledged ones (`unacked`, with the time it was taken in `unacked_index`); a worker takes
a message from the list into `unacked` in one step (`persai.queue`) and starts its job within
milliseconds. So a job queued for longer than the grace period whose message is in neither, or
has been taken that long ago without the job starting, has lost it. The check and the new
message are one script: a message that is there is never doubled. (kombu's own take of one
message per BRPOP records it a moment after popping it; a sweep in that moment queues a second
message, which finds the job taken and does nothing.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import cast

import redis.asyncio as aioredis

from persai.jobs import keys
from persai.jobs.store import redis_errors
from persai.queue import QUEUE, UNACKED, UNACKED_INDEX, QueueMessage

log = logging.getLogger(__name__)

SWEEP_AT_ONCE = 100
"""At most this many of the oldest queued jobs are looked at in one sweep."""

# KEYS: enqueued set, the queue's list, unacked messages, their index by the time taken, then
# each job's hash and event stream. ARGV: grace (s), status event data, then each job's id, new
# message and its tag. The queue's oldest messages are read first (a consumer takes from the
# right), a hundred at a time, until every message looked for is found: the jobs looked at are
# the oldest queued ones, so a long queue is read no further than they are. Returns the ids of
# the jobs queued again.
_REQUEUE_LOST = """
local time = redis.call('TIME')
local cutoff = tonumber(time[1]) + tonumber(time[2]) / 1000000 - tonumber(ARGV[1])
local count = (#KEYS - 4) / 2
local lost, wanted, looking = {}, {}, 0
for n = 1, count do
  local job, id = KEYS[3 + 2 * n], ARGV[3 * n]
  local since = redis.call('ZSCORE', KEYS[1], id)
  if redis.call('HGET', job, 'status') ~= 'queued' then
    redis.call('ZREM', KEYS[1], id)
  elseif since and tonumber(since) <= cutoff then
    local tag = redis.call('HGET', job, 'message') or ''
    local taken = tag ~= '' and redis.call('ZSCORE', KEYS[4], tag)
    if tag == '' then
      lost[n] = ''
    elseif taken then
      if tonumber(taken) <= cutoff then lost[n] = tag end
    elseif redis.call('HEXISTS', KEYS[3], tag) == 0 then
      wanted[tag] = n
      looking = looking + 1
    end
  end
end
local function tag_of(raw)
  local _, last = string.find(raw, '"delivery_tag": "', 1, true)
  if not last then
    _, last = string.find(raw, '"delivery_tag":"', 1, true)
  end
  if not last then return nil end
  local close = string.find(raw, '"', last + 1, true)
  return close and string.sub(raw, last + 1, close - 1)
end
local length, seen = redis.call('LLEN', KEYS[2]), 0
while looking > 0 and seen < length do
  for _, raw in ipairs(redis.call('LRANGE', KEYS[2], -seen - 100, -seen - 1)) do
    local tag = tag_of(raw)
    if tag and wanted[tag] then
      wanted[tag] = nil
      looking = looking - 1
    end
  end
  seen = seen + 100
end
for tag, n in pairs(wanted) do lost[n] = '' end
local requeued = {}
for n = 1, count do
  local old = lost[n]
  if old then
    local id = ARGV[3 * n]
    if old ~= '' then
      redis.call('HDEL', KEYS[3], old)
      redis.call('ZREM', KEYS[4], old)
    end
    redis.call('LPUSH', KEYS[2], ARGV[3 * n + 1])
    redis.call('HSET', KEYS[3 + 2 * n], 'message', ARGV[3 * n + 2])
    redis.call('ZADD', KEYS[1], cutoff + tonumber(ARGV[1]), id)
    redis.call('XADD', KEYS[4 + 2 * n], '*', 'event', 'status', 'data', ARGV[2])
    requeued[#requeued + 1] = id
  end
end
return requeued
"""

REASON = "its queue message was lost; queued again"


class LostJobSweep:
    """Queues again the queued jobs whose message was lost (see the module's docstring)."""

    def __init__(self, redis: aioredis.Redis, *, grace_s: float) -> None:
        self._redis = redis
        self._grace_s = grace_s
        self._requeue = redis.register_script(_REQUEUE_LOST)

    async def sweep(self, message_for: Callable[[str], QueueMessage]) -> list[str]:
        """Queue again, each with a new message from `message_for`, the oldest queued jobs
        whose message was lost; returns their ids."""
        async with redis_errors():
            seconds, microseconds = await self._redis.time()
            cutoff = seconds + microseconds / 1e6 - self._grace_s
            ids = cast(
                list[str],
                await self._redis.zrangebyscore(
                    keys.ENQUEUED, "-inf", cutoff, start=0, num=SWEEP_AT_ONCE
                ),
            )
            if not ids:
                return []
            messages = [message_for(job_id) for job_id in ids]
            names = [keys.ENQUEUED, QUEUE, UNACKED, UNACKED_INDEX]
            names += [name for job_id in ids for name in (keys.job(job_id), keys.events(job_id))]
            argv: list[str | float] = [
                self._grace_s,
                json.dumps({"status": "queued", "reason": REASON}),
            ]
            for job_id, message in zip(ids, messages, strict=True):
                argv += [job_id, message.raw, message.tag]
            requeued = cast(list[str], await self._requeue(keys=names, args=argv))
        for job_id in requeued:
            log.warning("job %s was queued without a message to run it; queued it again", job_id)
        return [str(job_id) for job_id in requeued]
