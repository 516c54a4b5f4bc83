"""Jobs and their event streams in Redis.

A job's status lives in its own hash field and changes only through one Lua script that checks
the current status, writes the new one with the record, and appends the `status` event, all
at once: two replicas racing (a cancel and a worker starting) cannot both win.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from persai.errors import NotFound, StoreUnavailable
from persai.jobs import keys
from persai.jobs.models import Event, EventName, Job, JobStatus

log = logging.getLogger(__name__)

# KEYS: job hash, event stream, queued set, running set, owner's active set, credentials, lease,
# cancel flag. ARGV: job id, new status, doc, event data, retention (s), allowed statuses...
# The sets follow the status: they give the queue depth, the running jobs to watch for lost
# workers, and each owner's number of unfinished jobs. A final status is followed by `done`, the
# last event of the stream, in the same step: no job ends without it. A finished job is kept for
# the retention period; its credentials and lease go at once.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local allowed = false
for i = 6, #ARGV do
  if ARGV[i] == current then allowed = true end
end
if not allowed then return false end
local id, new = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', new, 'doc', ARGV[3])
if new == 'queued' then
  redis.call('SADD', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  redis.call('SADD', KEYS[5], id)
elseif new == 'running' then
  redis.call('SREM', KEYS[3], id)
  redis.call('SADD', KEYS[4], id)
else
  redis.call('SREM', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  redis.call('SREM', KEYS[5], id)
end
local entry = redis.call('XADD', KEYS[2], '*', 'event', 'status', 'data', ARGV[4])
if new ~= 'queued' and new ~= 'running' then
  redis.call('XADD', KEYS[2], '*', 'event', 'done', 'data', cjson.encode({status = new}))
  redis.call('DEL', KEYS[6], KEYS[7])
  for _, key in ipairs({KEYS[1], KEYS[2], KEYS[8]}) do
    redis.call('EXPIRE', key, ARGV[5])
  end
end
return entry
"""

# KEYS: job hash, event stream, owner's jobs, queued set, owner's active set, credentials.
# ARGV: job id, status, owner, doc, creation time (Unix s), status event data, sealed
# credentials ('' for none), their TTL (s). A new job, all at once; returns its first event's id.
_CREATE = """
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'owner', ARGV[3], 'doc', ARGV[4])
local entry = redis.call('XADD', KEYS[2], '*', 'event', 'status', 'data', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[6], ARGV[7], 'EX', ARGV[8])
end
return entry
"""

# KEYS: owner's active set, queued set, owner's submissions this minute.
# Returns (the owner's unfinished jobs, jobs waiting, submissions this minute with this one).
_LOAD = """
local submitted = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], 120)
return {redis.call('SCARD', KEYS[1]), redis.call('SCARD', KEYS[2]), submitted}
"""

# KEYS: job hash, event stream. ARGV: doc, event name, event data.
# The record's progress and the event that tells of it, at once and in one round trip.
_SAVE_AND_EMIT = """
redis.call('HSET', KEYS[1], 'doc', ARGV[1])
return redis.call('XADD', KEYS[2], '*', 'event', ARGV[2], 'data', ARGV[3])
"""


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn Redis being unreachable into PersAI's StoreUnavailable (a 503)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {exc}", retry_after_s=5) from exc


def _doc(job: Job) -> str:
    return job.model_dump_json(exclude={"status"})


def _job(status: Any, doc: Any) -> Job | None:
    """The job of its stored status and document (None: no such job)."""
    if status is None or doc is None:
        return None
    return Job.model_validate({**json.loads(doc), "status": status})


class JobStore:
    """Job records, per-user indexes and event streams, on one Redis."""

    def __init__(self, redis: aioredis.Redis, *, retention_s: int) -> None:
        self._redis = redis
        self._retention_s = retention_s
        self._transition = redis.register_script(_TRANSITION)
        self._save_and_emit = redis.register_script(_SAVE_AND_EMIT)
        self._create = redis.register_script(_CREATE)
        self._load = redis.register_script(_LOAD)

    async def create(self, job: Job, sealed_credentials: str | None, ttl_s: int) -> str:
        """Store a new queued job and its first event; returns that event's id.

        Called before the job is enqueued, so a subscriber starting from the returned id misses
        nothing the worker emits.
        """
        names = [
            keys.job(job.id),
            keys.events(job.id),
            keys.user_jobs(job.owner),
            keys.QUEUED,
            keys.user_active(job.owner),
            keys.credentials(job.id),
        ]
        status = job.status.value
        argv = [job.id, status, job.owner, _doc(job), repr(job.created_at.timestamp())]
        argv += [json.dumps({"status": status}), sealed_credentials or "", str(ttl_s)]
        async with redis_errors():
            return str(await self._create(keys=names, args=argv))

    async def get(self, job_id: str) -> Job | None:
        async with redis_errors():
            status, doc = await self._redis.hmget(keys.job(job_id), ["status", "doc"])
        return _job(status, doc)

    async def get_to_run(self, job_id: str) -> tuple[Job | None, bool]:
        """The job and whether its cancellation was asked for, read together."""
        async with redis_errors():
            (status, doc), cancelled = await asyncio.gather(
                self._redis.hmget(keys.job(job_id), ["status", "doc"]),
                self._redis.exists(keys.cancel(job_id)),
            )
        return _job(status, doc), bool(cancelled)

    async def get_for(self, owner: str, job_id: str) -> Job:
        """The job if `owner` owns it; anything else is the same 404 (no existence leak)."""
        job = await self.get(job_id)
        if job is None or job.owner != owner:
            raise NotFound(f"no investigation {job_id!r}")
        return job

    async def document_for(self, owner: str, job_id: str) -> str:
        """The job as JSON if `owner` owns it (else NotFound), without decoding the record."""
        async with redis_errors():
            fields = await self._redis.hmget(keys.job(job_id), ["status", "owner", "doc"])
        status, stored_owner, doc = (str(f) if f is not None else None for f in fields)
        if status is None or doc is None or stored_owner != owner:
            raise NotFound(f"no investigation {job_id!r}")
        return f'{{"status":{json.dumps(status)},{doc[1:]}'

    async def list_for(self, owner: str, *, offset: int, limit: int) -> tuple[list[Job], int]:
        """The owner's jobs, newest first, and how many there are in all."""
        index = keys.user_jobs(owner)
        async with redis_errors():
            ids = cast(list[str], await self._redis.zrevrange(index, offset, offset + limit - 1))
            total = await self._redis.zcard(index)
        jobs = [job for job_id in ids if (job := await self.get(job_id)) is not None]
        return jobs, int(total)

    async def transition(
        self, job: Job, to: JobStatus, allowed: Iterable[JobStatus], **event: Any
    ) -> bool:
        """Move `job` to status `to` if it is now in one of `allowed`; store `job` as it is.

        Returns whether this call made the change (False: somebody else got there first).
        """
        job.status = to
        data = json.dumps({"status": to.value, **event}, default=str)
        argv = [job.id, to.value, _doc(job), data, self._retention_s, *(s.value for s in allowed)]
        names = [
            keys.job(job.id),
            keys.events(job.id),
            keys.QUEUED,
            keys.RUNNING,
            keys.user_active(job.owner),
            keys.credentials(job.id),
            keys.lease(job.id),
            keys.cancel(job.id),
        ]
        async with redis_errors():
            return bool(await self._transition(keys=names, args=argv))

    async def emit(self, job_id: str, event: EventName, data: dict[str, Any]) -> str:
        """Append an event to the job's stream; returns its id."""
        fields: dict[Any, Any] = {"event": event, "data": json.dumps(data, default=str)}
        async with redis_errors():
            entry = await self._redis.xadd(keys.events(job_id), fields)
        return str(entry)

    async def save_and_emit(self, job: Job, event: EventName, data: dict[str, Any]) -> str:
        """Store the record's progress (steps, usage; the status is left as it is) and append
        an event, in one step and one round trip: the record and its stream agree."""
        names = [keys.job(job.id), keys.events(job.id)]
        argv = [_doc(job), event, json.dumps(data, default=str)]
        async with redis_errors():
            entry = await self._save_and_emit(keys=names, args=argv)
        return str(entry)

    async def read_events(self, job_id: str, after: str, *, block_ms: int | None) -> list[Event]:
        """Events after the entry id `after` (`0` for all), waiting up to block_ms for one."""
        async with redis_errors():
            reply = cast(
                list[Any], await self._redis.xread({keys.events(job_id): after}, block=block_ms)
            )
        return [
            Event(id=entry_id, event=fields["event"], data=json.loads(fields["data"]))
            for _stream, entries in reply
            for entry_id, fields in entries
        ]

    async def last_event_id(self, job_id: str) -> str:
        """The id of the job's newest event (`0-0` when there is none)."""
        async with redis_errors():
            newest = cast(list[Any], await self._redis.xrevrange(keys.events(job_id), count=1))
        return str(newest[0][0]) if newest else "0-0"

    async def credentials(self, job_id: str) -> str | None:
        async with redis_errors():
            value = await self._redis.get(keys.credentials(job_id))
        return None if value is None else str(value)

    async def store_credentials(self, job_id: str, sealed: str, ttl_s: int) -> None:
        async with redis_errors():
            await self._redis.set(keys.credentials(job_id), sealed, ex=ttl_s)

    async def request_cancel(self, job_id: str) -> None:
        """Flag the job as cancelled and tell every worker (one of them may be running it)."""
        async with redis_errors():
            await self._redis.set(keys.cancel(job_id), "1", ex=self._retention_s)
            await self._redis.publish(keys.CANCEL_CHANNEL, job_id)

    async def cancel_requested(self, job_id: str) -> bool:
        async with redis_errors():
            return bool(await self._redis.exists(keys.cancel(job_id)))

    # Admission

    async def load(self, owner: str, minute: int) -> tuple[int, int, int]:
        """(the owner's unfinished jobs, jobs waiting in the queue, the owner's submissions
        this minute including this one)."""
        names = [keys.user_active(owner), keys.QUEUED, keys.user_rate(owner, minute)]
        async with redis_errors():
            active, queued, submitted = await self._load(keys=names)
        return int(active), int(queued), int(submitted)

    # Leases: a running job's worker renews its lease; a job whose lease lapsed lost its worker.

    async def hold(self, job_ids: Iterable[str], worker_id: str, ttl_s: float) -> None:
        ttl_ms = int(ttl_s * 1000)
        async with redis_errors():  # issued together: they share the client's pipeline
            await asyncio.gather(
                *(self._redis.set(keys.lease(job_id), worker_id, px=ttl_ms) for job_id in job_ids)
            )

    async def orphans(self) -> list[str]:
        """Running jobs whose worker stopped renewing their lease."""
        async with redis_errors():
            running = cast(list[str], await self._redis.smembers(keys.RUNNING))
            if not running:
                return []
            leases = await self._redis.mget([keys.lease(job_id) for job_id in running])
        return [job_id for job_id, lease in zip(running, leases, strict=True) if lease is None]

    async def reaper_lock(self, worker_id: str, ttl_s: float) -> bool:
        """Whether this worker is the one to look for orphans now (one at a time)."""
        async with redis_errors():
            return bool(
                await self._redis.set(keys.REAPER, worker_id, nx=True, px=int(ttl_s * 1000))
            )
