"""The worker side of notifications: ended alert jobs into the outbox, the outbox out.

Every worker process runs a `Courier`; Redis decides which of them moves a job or takes a
delivery (`outbox`), so any number of workers deliver each notification at least once, and a
destination that is down is retried with exponential backoff without holding anything else up.
Each attempt is recorded on the investigation (`alert.notifications`) and counted on /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import httpx
import redis.asyncio as aioredis

from persai import metrics
from persai.alerts import messages
from persai.alerts.groups import AlertGroups
from persai.alerts.outbox import MISSING_JOB_GRACE_S, Delivery, Outbox
from persai.alerts.receivers import AlertsConfig, Destination
from persai.alerts.records import amend
from persai.config import Settings
from persai.errors import PersAIError
from persai.jobs import Job, JobStatus, JobStore, keys, redis_errors

log = logging.getLogger(__name__)

POLL_S = 1.0
TAKE = 20
"""Deliveries one worker attempts at once."""
MAX_RECORDED = 50
"""Attempts kept on an investigation (the latest ones)."""

NOTIFICATIONS = metrics.ALERT_NOTIFICATIONS


class DeliveryFailed(Exception):
    """One attempt failed; the message says how (never with the URL: it may be a secret)."""


class Courier:
    def __init__(
        self,
        settings: Settings,
        config: AlertsConfig,
        redis: aioredis.Redis,
        http: httpx.AsyncClient,
    ) -> None:
        self._settings = settings
        self._config = config
        self._redis = redis
        self._http = http
        self._store = JobStore(redis, retention_s=settings.job_retention_s)
        self._outbox = Outbox(redis)
        self._groups = AlertGroups(redis)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except (PersAIError, aioredis.RedisError, OSError) as exc:
                log.warning("notifications: %s; trying again", exc)
            except Exception as exc:  # a bug must not stop every notification for good
                log.error("notifications: %s; trying again", type(exc).__name__)
            await asyncio.sleep(POLL_S)

    async def tick(self) -> None:
        """Queue the notifications of jobs that ended, then attempt the due ones."""
        await self.release_ended()
        lease_s = self._settings.alerts_notify_timeout_s * 2 + 1
        deliveries = await self._outbox.take(TAKE, lease_s)
        await asyncio.gather(*(self._deliver(d) for d in deliveries))

    async def release_ended(self) -> None:
        pending = await self._outbox.pending()
        if not pending:
            return
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            for job_id, _ in pending:
                pipe.hget(keys.job(job_id), "status")
            statuses = await pipe.execute()
        now = time.time()
        for (job_id, since), status in zip(pending, statuses, strict=True):
            if status is None:
                if now - since > MISSING_JOB_GRACE_S:
                    await self._outbox.forget(job_id)
                continue
            if not JobStatus(status).terminal:
                continue
            job = await self._store.get(job_id)
            receiver = self._config.receiver(job.alert.receiver) if job and job.alert else None
            names = [d.name for d in receiver.destinations] if receiver else []
            if job is not None and await self._outbox.release(
                job_id, receiver.name if receiver else "", names
            ):
                log.info("job %s ended: %d notification(s) queued", job_id, len(names))

    async def _deliver(self, delivery: Delivery) -> None:
        job = await self._store.get(delivery.job_id)
        receiver = self._config.receiver(job.alert.receiver) if job and job.alert else None
        destination = next(
            (
                d
                for d in (receiver.destinations if receiver else [])
                if d.name == delivery.destination
            ),
            None,
        )
        if job is None or destination is None:  # expired, or no longer configured
            NOTIFICATIONS.labels(delivery.destination, "dropped").inc()
            await self._outbox.done(delivery)
            return
        job = await self._with_resolution(job)
        try:
            await self._send(destination, job, delivery)
        except DeliveryFailed as exc:
            outcome = f"failed: {exc}"
            log.warning(
                "notification of job %s to %s failed (%s), attempt %d",
                job.id,
                destination.name,
                exc,
                delivery.attempt,
            )
        else:
            outcome = "delivered"
        given_up = (
            outcome != "delivered" and delivery.age_s > self._settings.alerts_notify_give_up_s
        )
        await self._record(job.id, delivery, outcome + ("; given up" if given_up else ""))
        NOTIFICATIONS.labels(destination.name, outcome.split(":")[0]).inc()
        if outcome == "delivered" or given_up:
            await self._outbox.done(delivery)
        else:
            await self._outbox.retry(delivery, self._backoff(delivery.attempt))

    def _backoff(self, attempt: int) -> float:
        first = self._settings.alerts_notify_backoff_s
        return float(
            min(first * 2 ** max(0, attempt - 1), self._settings.alerts_notify_backoff_max_s)
        )

    async def _with_resolution(self, job: Job) -> Job:
        """The job, marked resolved when its group was resolved while it ran."""
        if job.alert is None or job.alert.status == "resolved":
            return job
        at = await self._groups.resolved_at(job.id)
        if at is None:
            return job
        moment = datetime.fromtimestamp(at, UTC)

        def resolved(ended: Job) -> bool:
            if ended.alert is None or ended.alert.status == "resolved":
                return False
            ended.alert.status, ended.alert.resolved_at = "resolved", moment
            return True

        return await amend(self._redis, job.id, resolved) or job

    async def _send(self, destination: Destination, job: Job, delivery: Delivery) -> None:
        assert destination.resolved_url is not None  # read with the configuration
        url = messages.link(self._config.public_url, job.id)
        headers = {"Content-Type": "application/json", "X-PersAI-Delivery": delivery.id}
        if destination.kind == "slack":
            body = messages.encoded(messages.slack(job, url))
        else:
            body = messages.encoded(messages.document(job, url))
            assert destination.secret is not None  # required for a webhook
            timestamp = int(time.time())
            headers["X-PersAI-Timestamp"] = str(timestamp)
            headers["X-PersAI-Signature"] = messages.sign(
                destination.secret.get_secret_value(), timestamp, body
            )
        try:
            response = await self._http.post(
                destination.resolved_url.get_secret_value(), content=body, headers=headers
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise DeliveryFailed(type(exc).__name__) from None  # its text may hold the URL
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code}")

    async def _record(self, job_id: str, delivery: Delivery, outcome: str) -> None:
        entry = {
            "destination": delivery.destination,
            "delivery": delivery.id,
            "attempt": delivery.attempt,
            "outcome": outcome,
            "at": datetime.now(UTC).isoformat(),
        }

        def add(job: Job) -> bool:
            if job.alert is None:
                return False
            job.alert.notifications = [*job.alert.notifications, entry][-MAX_RECORDED:]
            return True

        await amend(self._redis, job_id, add)
