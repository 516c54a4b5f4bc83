"""Alert investigations, newest first, filtered by alert name, status and creation time.

Each receiver's investigations are indexed under its owner (`Receiver.owner`) like a user's;
a listing reads the newest `SCAN_LIMIT` of them across receivers, then filters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal, cast

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from persai.alerts.receivers import AlertsConfig
from persai.jobs import Job, JobStatus, JobStore, keys, redis_errors

SCAN_LIMIT = 1000


class AlertFilters(BaseModel):
    """`GET /api/v1/investigations` filters; all but `source` apply to alert investigations."""

    source: Literal["user", "alert"] = "user"
    alertname: str | None = Field(default=None, max_length=128)
    status: JobStatus | None = None
    since: datetime | None = Field(default=None, description="Created at or after (UTC).")
    until: datetime | None = Field(default=None, description="Created at or before (UTC).")


async def list_alert_jobs(
    redis: aioredis.Redis,
    store: JobStore,
    config: AlertsConfig,
    readable: Callable[[Job], Awaitable[bool]],
    filters: AlertFilters,
) -> list[Job]:
    """The readable alert jobs that match, newest first (of the newest SCAN_LIMIT)."""
    since, until = (_utc(t) for t in (filters.since, filters.until))
    low = since.timestamp() if since else "-inf"
    high = until.timestamp() if until else "+inf"
    async with redis_errors():
        found = await asyncio.gather(
            *(
                redis.zrevrangebyscore(
                    keys.user_jobs(r.owner), high, low, start=0, num=SCAN_LIMIT, withscores=True
                )
                for r in config.receivers
            )
        )
    pairs = [pair for listed in found for pair in cast(list[tuple[str, float]], listed)]
    newest = sorted(((float(at), str(job_id)) for job_id, at in pairs), reverse=True)
    matches = []
    for _, job_id in newest[:SCAN_LIMIT]:
        job = await store.get(job_id)
        if job is None or job.alert is None:
            continue
        if filters.alertname is not None and job.alert.alertname != filters.alertname:
            continue
        if filters.status is not None and job.status is not filters.status:
            continue
        if await readable(job):
            matches.append(job)
    return matches


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is UTC (as everywhere in PersAI)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
