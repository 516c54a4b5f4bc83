"""Changes to an ended alert investigation's record: its resolution, its notifications.

An ended job has no writer left but these (and the job store's expiry): each change reads the
record, changes it and writes it back only if nothing else wrote it meanwhile (WATCH), trying
again otherwise. A job that has not ended is left to its worker.
"""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from persai.jobs import Job, JobStatus, keys, redis_errors

_TRIES = 20


async def amend(redis: aioredis.Redis, job_id: str, change: Callable[[Job], bool]) -> Job | None:
    """Apply `change` (which says whether it changed anything) to the ended job `job_id`;
    the job as it is now (None: gone). A job that has not ended is returned unchanged."""
    key = keys.job(job_id)
    async with redis_errors():
        for _ in range(_TRIES):
            async with redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    status, doc = await pipe.hmget(key, ["status", "doc"])
                    if status is None or doc is None:
                        return None
                    job = Job.model_validate_json(doc).model_copy(
                        update={"status": JobStatus(str(status))}
                    )
                    if not job.status.terminal or not change(job):
                        return job
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, "doc", job.model_dump_json(exclude={"status"}))
                    await pipe.execute()
                    return job
                except WatchError:
                    continue
    raise RuntimeError(f"job {job_id} kept changing while its record was amended")
