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

from persai.errors import NotFound, Superseded
from persai.jobs import keys, scripts
from persai.jobs.models import Event, EventName, Job, JobStatus
from persai.jobs.scripts import ScriptCall
from persai.queue import QUEUE, QueueMessage
from persai.redis_client import redis_errors as redis_errors  # re-exported (lives there)

log = logging.getLogger(__name__)

INDEX_SLACK_S = 86_400
"""A finished job's record expires `retention_s` after it ends, which is after its creation
by the time it waited and ran: its entry in the owner's index (scored by creation time) is
dropped `retention_s` + this long (a day) after its creation."""

WORKER_FORGOTTEN_S = 86_400
"""A worker silent this long (a day: stopped, or restarted under a new id) leaves the
workers' hash, which stays as small as the workers of the last day."""


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
        self._transition = redis.register_script(scripts.TRANSITION)
        self._save_and_emit = redis.register_script(scripts.SAVE_AND_EMIT)
        self._create = redis.register_script(scripts.CREATE)
        self._start = redis.register_script(scripts.START)
        self._renew = redis.register_script(scripts.RENEW)
        self._keep_credentials = redis.register_script(scripts.KEEP_CREDENTIALS)
        self._beat = redis.register_script(scripts.BEAT)

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
        call = self.creation(job, sealed_credentials, ttl_s, message)
        async with redis_errors():
            return str(await self._create(keys=call.keys, args=call.args))

    def creation(
        self, job: Job, sealed_credentials: str | None, ttl_s: int, message: QueueMessage | None
    ) -> ScriptCall:
        """The keys and arguments of `scripts.CREATE_JOB` that store `job` (see `create`)."""
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
        return ScriptCall(names, argv)

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
        the owner next submits one, see `scripts.CREATE_JOB`).
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

    async def ping(self) -> None:
        """Whether Redis answers: StoreUnavailable (with the reason) when it does not."""
        async with redis_errors():
            await self._redis.ping()

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
