"""Jobs and their event streams in Redis.

A job's status lives in its own hash field and changes only through one Lua script that checks
the current status, writes the new one with the record, and appends the `status` event, all
at once: two replicas racing (a cancel and a worker starting) cannot both win.

A job is queued in the same step as the write that makes it `queued` (its creation, or its
return to the queue when its worker was lost): the queue message goes into Redis with it, so no
job waits for a message that was never sent. Every write of a running job is fenced by its
attempt: a worker that stalled past its lease, while another worker took the job over, has its
progress and its outcome refused (`Superseded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from persai.errors import NotFound, PersAIError
from persai.jobs import keys
from persai.jobs.models import Event, EventName, Job, JobStatus
from persai.queue import QUEUE, QueueMessage
from persai.redis_client import redis_errors as redis_errors  # re-exported (lives there)

log = logging.getLogger(__name__)

INDEX_SLACK_S = 86_400
"""A finished job's record expires `retention_s` after it ends, which is after its creation
by the time it waited and ran: its entry in the owner's index (scored by creation time) is
dropped `retention_s` + this long (a day) after its creation."""

# Lua: whether the job (hash KEYS[1]) is in `attempt` ('' for any); a job stored before attempts
# were recorded passes.
_IN_ATTEMPT = """
local function in_attempt(attempt)
  if attempt == '' then return true end
  return tonumber(redis.call('HGET', KEYS[1], 'attempt') or attempt) == tonumber(attempt)
end
"""

# Lua: now, in Unix seconds, by Redis's clock (the one every process shares).
_NOW = """
local function now()
  local time = redis.call('TIME')
  return tonumber(time[1]) + tonumber(time[2]) / 1000000
end
"""

# KEYS: job hash, event stream, queued set, running set, owner's active set, credentials, lease,
# cancel flag, the queue's list, the enqueued set. ARGV: job id, new status, doc, status event
# data, retention (s), attempt ('' for any), '1' to change only a job whose lease lapsed, queue
# message ('' for none) and its tag, the number of allowed statuses, the allowed statuses, then
# events to append before the status event (name, data, ...).
# The sets follow the status: they give the queue depth, the running jobs to watch for lost
# workers, each owner's number of unfinished jobs, and when each queued job's message was sent
# (`persai.jobs.sweep`). A job goes back to the queue with its message, in this step. A final
# status is followed by `done`, the last event of the stream, in the same step: no job ends
# without it. A finished job is kept for the retention period; its credentials and lease go at
# once.
_TRANSITION = (
    _IN_ATTEMPT
    + _NOW
    + """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local allowed, count = false, tonumber(ARGV[10])
for i = 11, 10 + count do
  if ARGV[i] == current then allowed = true end
end
if not allowed or not in_attempt(ARGV[6]) then return false end
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[7]) == 1 then return false end
local id, new = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', new, 'doc', ARGV[3])
for i = 11 + count, #ARGV, 2 do
  redis.call('XADD', KEYS[2], '*', 'event', ARGV[i], 'data', ARGV[i + 1])
end
if new == 'queued' then
  redis.call('SADD', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  redis.call('SADD', KEYS[5], id)
  if ARGV[8] ~= '' then
    redis.call('LPUSH', KEYS[9], ARGV[8])
  end
  redis.call('HSET', KEYS[1], 'message', ARGV[9])
  redis.call('ZADD', KEYS[10], now(), id)
elseif new == 'running' then
  redis.call('SREM', KEYS[3], id)
  redis.call('SADD', KEYS[4], id)
  redis.call('ZREM', KEYS[10], id)
else
  redis.call('SREM', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  redis.call('SREM', KEYS[5], id)
  redis.call('ZREM', KEYS[10], id)
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
)

# KEYS: job hash, event stream, queued set, running set, lease, enqueued set. ARGV: job id, doc,
# status event data, attempt, worker id, lease TTL (ms). A queued job starts its next attempt
# (the one after the stored one) with its lease, at once: of two workers holding messages for
# it, one starts it; a worker whose view of the job is older than the last attempt does not.
_START = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return false end
local attempt = tonumber(ARGV[4])
if tonumber(redis.call('HGET', KEYS[1], 'attempt') or attempt - 1) ~= attempt - 1 then
  return false
end
redis.call('HSET', KEYS[1], 'status', 'running', 'doc', ARGV[2], 'attempt', attempt)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('SET', KEYS[5], ARGV[5], 'PX', ARGV[6])
return redis.call('XADD', KEYS[2], '*', 'event', 'status', 'data', ARGV[3])
"""

# KEYS: each job's hash and lease, in pairs. ARGV: worker id, lease TTL (ms), each job's attempt
# ('' for any). Renews the leases of the jobs still running in those attempts; returns the
# positions (1...) of the others: their attempts are over (taken over, cancelled, finished).
_RENEW = """
local over = {}
for n = 1, #KEYS / 2 do
  local job, attempt = KEYS[2 * n - 1], ARGV[2 + n]
  local stored = redis.call('HGET', job, 'attempt')
  if redis.call('HGET', job, 'status') == 'running'
      and (attempt == '' or tonumber(stored or attempt) == tonumber(attempt)) then
    redis.call('SET', KEYS[2 * n], ARGV[1], 'PX', ARGV[2])
  else
    over[#over + 1] = n
  end
end
return over
"""

# KEYS: job hash, event stream, owner's jobs, queued set, owner's active set, credentials.
# ARGV: job id, status, owner, doc, creation time (Unix s), status event data, sealed
# credentials ('' for none), their TTL (s), the index's cutoff (Unix s) and TTL (s).
# A new job, all at once; returns its first event's id. The owner's index drops the jobs
# created before the cutoff (their records have expired) and lives as long as its newest.
# Then KEYS: the queue's list, the enqueued set; ARGV: the queue message ('' for none) and its
# tag: the job is queued in the same step, so it is never stored without its message. A call
# retried after its reply was lost finds the job and writes nothing twice.
_CREATE = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  return first and first[1] or false
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'owner', ARGV[3], 'doc', ARGV[4])
redis.call('HSET', KEYS[1], 'attempt', 0, 'message', ARGV[12])
local entry = redis.call('XADD', KEYS[2], '*', 'event', 'status', 'data', ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[10])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[6], ARGV[7], 'EX', ARGV[8])
end
if ARGV[11] ~= '' then
  redis.call('LPUSH', KEYS[7], ARGV[11])
end
redis.call('ZADD', KEYS[8], now(), ARGV[1])
return entry
"""
)

# KEYS: owner's active set, queued set, owner's submissions this minute.
# Returns (the owner's unfinished jobs, jobs waiting, submissions this minute with this one).
_LOAD = """
local submitted = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], 120)
return {redis.call('SCARD', KEYS[1]), redis.call('SCARD', KEYS[2]), submitted}
"""

# KEYS: job hash, event stream. ARGV: attempt ('' for any), doc ('' to leave it), event name,
# event data. The record's progress and the event that tells of it, at once and in one round
# trip; with an attempt, only while the job runs in that attempt (else false).
_SAVE_AND_EMIT = (
    _IN_ATTEMPT
    + """
if ARGV[1] ~= '' and (redis.call('HGET', KEYS[1], 'status') ~= 'running'
    or not in_attempt(ARGV[1])) then
  return false
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'doc', ARGV[2])
end
return redis.call('XADD', KEYS[2], '*', 'event', ARGV[3], 'data', ARGV[4])
"""
)

# KEYS: job hash, credentials. ARGV: sealed credentials, their TTL (s). Refreshed credentials
# are sealed again only while the job may still use them: a refresh that ends after the job
# did (its final transition deleted them) writes nothing.
_KEEP_CREDENTIALS = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'running' then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""

WORKER_FORGOTTEN_S = 86_400
"""A worker silent this long (a day: stopped, or restarted under a new id) leaves the
workers' hash, which stays as small as the workers of the last day."""

# KEYS: the workers' hash. ARGV: worker id, how long (s) a silent worker is remembered.
# The heartbeat is stamped with Redis's clock, the one every host shares: a worker's own clock
# may be off by any amount. The stamp goes first: Redis refuses it when out of memory.
_BEAT = (
    _NOW
    + """
local at = now()
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.3f', at))
local beats = redis.call('HGETALL', KEYS[1])
for i = 1, #beats, 2 do
  if (tonumber(beats[i + 1]) or 0) < at - tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], beats[i])
  end
end
"""
)


class Superseded(PersAIError):
    """A write of a job's attempt that is no longer the job's current one: another worker took
    the job over (this one's lease lapsed), or the job ended meanwhile. Nothing was written."""

    error_type = "superseded"


def _doc(job: Job) -> str:
    return job.model_dump_json(exclude={"status"})


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str)


def _seconds(stamp: Any) -> float:
    """A heartbeat's stamp (Unix s); one that is not a number is as old as can be."""
    try:
        return float(stamp)
    except (TypeError, ValueError):
        return float("-inf")


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
        self._index_ttl_s = retention_s + INDEX_SLACK_S
        self._transition = redis.register_script(_TRANSITION)
        self._save_and_emit = redis.register_script(_SAVE_AND_EMIT)
        self._create = redis.register_script(_CREATE)
        self._load = redis.register_script(_LOAD)
        self._start = redis.register_script(_START)
        self._renew = redis.register_script(_RENEW)
        self._keep_credentials = redis.register_script(_KEEP_CREDENTIALS)
        self._beat = redis.register_script(_BEAT)

    async def create(
        self,
        job: Job,
        sealed_credentials: str | None,
        ttl_s: int,
        message: QueueMessage | None = None,
    ) -> str:
        """Store a new queued job, its first event and its queue `message`, in one step; returns
        that event's id, from which a subscriber misses nothing the worker emits.

        Without a message the job waits for one sent otherwise (the benchmarks publish their
        own), or for the sweep of queued jobs without one (`persai.jobs.sweep`).
        """
        names = [
            keys.job(job.id),
            keys.events(job.id),
            keys.user_jobs(job.owner),
            keys.QUEUED,
            keys.user_active(job.owner),
            keys.credentials(job.id),
            QUEUE,
            keys.ENQUEUED,
        ]
        status = job.status.value
        argv = [job.id, status, job.owner, _doc(job), repr(job.created_at.timestamp())]
        argv += [json.dumps({"status": status}), sealed_credentials or "", str(ttl_s)]
        argv += [repr(job.created_at.timestamp() - self._index_ttl_s), str(self._index_ttl_s)]
        argv += [message.raw, message.tag] if message else ["", ""]
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
        """The owner's jobs, newest first, and how many there are in all.

        A listed job whose record has expired leaves the index here (the rest of them go when
        the owner next submits one, see `_CREATE`).
        """
        index = keys.user_jobs(owner)
        async with redis_errors():
            ids = cast(list[str], await self._redis.zrevrange(index, offset, offset + limit - 1))
            total = await self._redis.zcard(index)
        found = [(job_id, await self.get(job_id)) for job_id in ids]
        jobs = [job for _, job in found if job is not None]
        expired = [job_id for job_id, job in found if job is None]
        if expired:  # tidying only: a read does not fail for it
            with contextlib.suppress(RedisError, OSError):
                await self._redis.zrem(index, *expired)
        return jobs, int(total) - len(expired)

    async def transition(
        self,
        job: Job,
        to: JobStatus,
        allowed: Iterable[JobStatus],
        *,
        in_attempt: int | None = None,
        lease_lapsed: bool = False,
        message: QueueMessage | None = None,
        events: Sequence[tuple[EventName, dict[str, Any]]] = (),
        **event: Any,
    ) -> bool:
        """Move `job` to status `to` if it is now in one of `allowed`; store `job` as it is,
        append `events` and then the status event (`event` its extra fields), all at once.

        `in_attempt`: only while the job is in that attempt (fencing: a worker's outcome is
        refused once another attempt started). `lease_lapsed`: only while nobody holds the
        job's lease. `message`: the queue entry that runs the job again, pushed in the same step
        (with `to` queued). Returns whether this call made the change (False: somebody else got
        there first).
        """
        job.status = to
        data = json.dumps({"status": to.value, **event}, default=str)
        statuses = [s.value for s in allowed]
        argv: list[Any] = [job.id, to.value, _doc(job), data, self._retention_s]
        argv += ["" if in_attempt is None else in_attempt, "1" if lease_lapsed else ""]
        argv += [message.raw, message.tag] if message else ["", ""]
        argv += [len(statuses), *statuses]
        argv += [part for name, fields in events for part in (name, _json(fields))]
        names = [
            keys.job(job.id),
            keys.events(job.id),
            keys.QUEUED,
            keys.RUNNING,
            keys.user_active(job.owner),
            keys.credentials(job.id),
            keys.lease(job.id),
            keys.cancel(job.id),
            QUEUE,
            keys.ENQUEUED,
        ]
        async with redis_errors():
            return bool(await self._transition(keys=names, args=argv))

    async def start(self, job: Job, worker_id: str, lease_s: float) -> bool:
        """Start the queued job's attempt `job.attempts` (the one after the stored one) with
        this worker's lease, and store `job`; whether this call started it."""
        job.status = JobStatus.RUNNING
        data = _json({"status": JobStatus.RUNNING.value, "attempt": job.attempts})
        names = [
            keys.job(job.id),
            keys.events(job.id),
            keys.QUEUED,
            keys.RUNNING,
            keys.lease(job.id),
            keys.ENQUEUED,
        ]
        argv: list[str | int] = [job.id, _doc(job), data, job.attempts, worker_id]
        argv.append(int(lease_s * 1000))
        async with redis_errors():
            return bool(await self._start(keys=names, args=argv))

    async def emit(
        self, job_id: str, event: EventName, data: dict[str, Any], *, attempt: int | None = None
    ) -> str:
        """Append an event to the job's stream; returns its id. With `attempt`, only while the
        job runs in that attempt (else Superseded)."""
        if attempt is not None:
            return await self._progress(job_id, attempt, "", event, data)
        fields: dict[Any, Any] = {"event": event, "data": _json(data)}
        async with redis_errors():
            entry = await self._redis.xadd(keys.events(job_id), fields)
        return str(entry)

    async def save_and_emit(
        self, job: Job, event: EventName, data: dict[str, Any], *, attempt: int | None = None
    ) -> str:
        """Store the record's progress (steps, usage; the status is left as it is) and append
        an event, in one step and one round trip: the record and its stream agree. With
        `attempt`, only while the job runs in that attempt (else Superseded)."""
        return await self._progress(job.id, attempt, _doc(job), event, data)

    async def _progress(
        self, job_id: str, attempt: int | None, doc: str, event: EventName, data: dict[str, Any]
    ) -> str:
        names = [keys.job(job_id), keys.events(job_id)]
        argv = ["" if attempt is None else attempt, doc, event, _json(data)]
        async with redis_errors():
            entry = await self._save_and_emit(keys=names, args=argv)
        if not entry:
            raise Superseded(f"attempt {attempt} of job {job_id} is over; its writes are refused")
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

    async def store_credentials(self, job_id: str, sealed: str, ttl_s: int) -> bool:
        """Replace the job's sealed credentials (refreshed ones) while the job is queued or
        running; whether they were stored (not for a job that ended or expired: its
        credentials were deleted with its end and stay so)."""
        names = [keys.job(job_id), keys.credentials(job_id)]
        async with redis_errors():
            return bool(await self._keep_credentials(keys=names, args=[sealed, ttl_s]))

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

    async def renew(
        self, leases: Mapping[str, int | None], worker_id: str, ttl_s: float
    ) -> list[str]:
        """Renew this worker's leases on its running jobs, each in its attempt (None: any), in
        one step; returns the jobs whose attempt is over (another worker took the job over, or
        it ended), which this worker must stop."""
        ids = list(leases)
        if not ids:
            return []
        names = [name for job_id in ids for name in (keys.job(job_id), keys.lease(job_id))]
        argv: list[str | int] = [worker_id, int(ttl_s * 1000)]
        argv += [attempt if (attempt := leases[job_id]) is not None else "" for job_id in ids]
        async with redis_errors():
            over = await self._renew(keys=names, args=argv)
        return [ids[int(position) - 1] for position in over]

    async def hold(self, job_ids: Iterable[str], worker_id: str, ttl_s: float) -> None:
        """Renew the leases of these running jobs, whatever their attempt."""
        await self.renew(dict.fromkeys(job_ids), worker_id, ttl_s)

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

    # Workers: each stamps its heartbeat with Redis's clock, which every host shares.

    async def beat(self, worker_id: str) -> None:
        """This worker is alive now, by Redis's clock (for /readyz)."""
        argv: list[str | int] = [worker_id, WORKER_FORGOTTEN_S]
        async with redis_errors():
            await self._beat(keys=[keys.WORKERS], args=argv)

    async def workers_seen(self, within_s: float) -> int:
        """How many workers sent a heartbeat in the last `within_s` seconds of Redis's clock."""
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hgetall(keys.WORKERS)
            (seconds, microseconds), beats = await pipe.execute()
        now = seconds + microseconds / 1e6
        return sum(1 for seen in beats.values() if now - _seconds(seen) <= within_s)
