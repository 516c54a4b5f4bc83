"""The Perses plugin's turns, claimed in Redis so that a retried turn re-attaches to its job.

The plugin's SDK retries a turn whose response is slow to start (see `persai.server.compat`):
the same user asking the same message of the same session and datasource within
`TURN_RETRY_WINDOW_S` means the same question, so it follows the job the first attempt started
instead of asking twice. The claim (`keys.turn`) holds that job's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from persai.errors import PersAIError
from persai.jobs import keys
from persai.jobs.store import JobStore, redis_errors

__all__ = ["FIRST_ATTEMPT_WAIT_S", "TURN_RETRY_WINDOW_S", "TurnClaims"]

log = logging.getLogger(__name__)

TURN_RETRY_WINDOW_S = 60
"""Seconds during which the same turn, asked again, re-attaches to the job already started."""
FIRST_ATTEMPT_WAIT_S = 10.0
"""How long a retried turn waits for the first attempt to store its job (s)."""
_POLL_S = 0.05


class TurnClaims:
    """Which job each recent turn started (see the module's docstring)."""

    def __init__(self, redis: aioredis.Redis, store: JobStore) -> None:
        self._redis = redis
        self._store = store

    async def job_for(
        self,
        owner: str,
        session_id: str,
        message: str,
        datasource: str,
        submit: Callable[[str], Awaitable[object]],
    ) -> str:
        """The id of this turn's job: the one a first attempt started moments ago, else a new
        one that `submit(job_id)` submits. A submission refused (PersAIError) releases the
        claim, so that the next attempt starts afresh."""
        digest = hashlib.sha256(f"{datasource}\0{message}".encode()).hexdigest()
        key = keys.turn(owner, session_id, digest)
        job_id = uuid.uuid4().hex
        async with redis_errors():
            claimed = await self._redis.set(key, job_id, nx=True, ex=TURN_RETRY_WINDOW_S)
            earlier = None if claimed else await self._redis.get(key)
        if earlier and await self._first_attempt_stored(key, str(earlier)):
            log.info("turn asked again in session %s: re-attaching to job %s", session_id, earlier)
            return str(earlier)
        if not claimed:  # the earlier claim expired, or its attempt failed, in between
            async with redis_errors():
                await self._redis.set(key, job_id, ex=TURN_RETRY_WINDOW_S)
        try:
            await submit(job_id)
        except PersAIError:
            # Nothing was queued: a retry must start afresh.
            with contextlib.suppress(RedisError, OSError):
                await self._redis.delete(key)
            raise
        return job_id

    async def _first_attempt_stored(self, key: str, job_id: str) -> bool:
        """Whether the attempt that claimed this turn stored its job: a retry can arrive while
        the first attempt is still submitting (choosing the model, writing the job), and must
        wait for it rather than follow a job that does not exist yet. False when that attempt
        gave up (its claim is gone) or never stored the job within the wait."""
        deadline = asyncio.get_running_loop().time() + FIRST_ATTEMPT_WAIT_S
        while True:
            if await self._store.get(job_id) is not None:
                return True
            async with redis_errors():
                if await self._redis.get(key) != job_id:
                    return False
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(_POLL_S)
