"""Runs one job: from its record in Redis to a terminal state, whatever happens on the way.

Each run is one attempt of the job, started with this worker's lease in one step; every write
it makes is fenced by its attempt number, so an attempt whose worker stalled past its lease
(while another worker took the job over) stores nothing more: neither progress nor outcome.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from persai import metrics
from persai.agent import Investigator, Limits, Progress, Turn, history, instructions
from persai.agent.tools import TokenSource, ToolContext, UpstreamAPI, UpstreamSlots
from persai.config import Settings
from persai.datasources import parse_datasource, resolve
from persai.errors import PersAIError
from persai.jobs import (
    ConversationStore,
    EventName,
    Job,
    JobStatus,
    JobStore,
    Superseded,
    Usage,
    utcnow,
)
from persai.logging import bound
from persai.queue import QueueMessage
from persai.runtime.credentials import CredentialsSource
from persai.runtime.evidence import evidence_of
from persai.runtime.reporter import JobReporter

log = logging.getLogger(__name__)

_STARTABLE = (JobStatus.QUEUED,)
MAX_ATTEMPTS = 3
"""A job whose worker was lost this many times fails instead of being retried again."""


@dataclass
class Services:
    """What every job of a worker process shares."""

    settings: Settings
    store: JobStore
    conversations: ConversationStore
    http: httpx.AsyncClient
    """For Perses's token refresh."""
    tools_http: aiohttp.ClientSession
    """For the tools' requests to the datasources and Perses."""
    upstream_slots: UpstreamSlots
    investigator: Investigator
    credentials: CredentialsSource


class JobRunner:
    def __init__(self, services: Services, *, worker_id: str) -> None:
        self._s = services
        self._worker_id = worker_id
        self.attempts: dict[str, int] = {}
        """The attempt of each job this runner is running, whose lease the worker renews."""

    async def run(self, job_id: str) -> None:
        """Run the job unless it is finished, cancelled or taken by another worker."""
        with bound(job=job_id):
            job, cancelled = await self._s.store.get_to_run(job_id)
            if job is None:
                log.warning("job %s does not exist (expired?); nothing to do", job_id)
                return
            if job.status.terminal:
                log.info("job already %s; a redelivered message does nothing", job.status)
                return
            if cancelled:
                await self._finish_cancelled_before_start(job)
                return
            job.started_at, job.attempts = utcnow(), job.attempts + 1
            job.steps, job.usage = [], Usage()  # a retried job starts over
            # with the lease, at once: a running job without one looks orphaned to other workers
            lease_s = self._s.settings.heartbeat_timeout_s
            if not await self._s.store.start(job, self._worker_id, lease_s):
                log.info("job was taken or changed meanwhile; leaving it")
                return
            self.attempts[job_id] = job.attempts
            try:
                if job.started_at is not None:
                    metrics.QUEUE_WAIT.observe((job.started_at - job.created_at).total_seconds())
                await self._investigate(job)
            except Superseded as exc:
                log.warning("another worker took this job over; this attempt stops: %s", exc)
            finally:
                if self.attempts.get(job_id) == job.attempts:
                    del self.attempts[job_id]

    async def recover(self, job_id: str, message: QueueMessage) -> bool:
        """A running job lost its worker (its lease lapsed): queue it again with `message`
        (True), or fail it after MAX_ATTEMPTS. Either in one step, and only while the job is
        still in the attempt that lost its worker and nobody renewed the lease meanwhile."""
        with bound(job=job_id):
            job = await self._s.store.get(job_id)
            if job is None or job.status is not JobStatus.RUNNING:
                return False
            if job.attempts >= MAX_ATTEMPTS:
                job.error = f"the worker running it was lost {job.attempts} times"
                job.finished_at = utcnow()
                await self._s.store.transition(
                    job,
                    JobStatus.FAILED,
                    (JobStatus.RUNNING,),
                    in_attempt=job.attempts,
                    lease_lapsed=True,
                    events=[("error", {"message": job.error})],
                )
                return False
            log.warning("the worker running this job was lost; queueing it again")
            return await self._s.store.transition(
                job,
                JobStatus.QUEUED,
                (JobStatus.RUNNING,),
                in_attempt=job.attempts,
                lease_lapsed=True,
                message=message,
                reason="the worker running it was lost; starting over",
            )

    async def _finish_cancelled_before_start(self, job: Job) -> None:
        job.finished_at = utcnow()
        await self._s.store.transition(job, JobStatus.CANCELLED, _STARTABLE)

    async def _investigate(self, job: Job) -> None:
        settings = self._s.settings
        reporter = JobReporter(self._s.store, job, max_events=settings.max_events_per_job)
        progress = Progress(steps=job.steps, usage=job.usage)
        started = asyncio.get_running_loop().time()
        try:
            turn, context = await self._prepare(job)
            limits = Limits(
                max_steps=settings.max_steps,
                model_call_timeout_s=settings.model_call_timeout_s,
                deadline=started + settings.investigation_timeout_s,
                history_budget_tokens=settings.history_budget_tokens,
            )
            hard_deadline_s = settings.investigation_timeout_s + settings.model_call_timeout_s
            async with asyncio.timeout(hard_deadline_s):
                await self._s.investigator.run(turn, context, reporter, limits, progress)
        except asyncio.CancelledError:
            await self._end(job, reporter, JobStatus.CANCELLED, progress, "cancelled")
            raise
        except Superseded:
            raise  # nothing of this attempt is stored any more, not even its failure
        except TimeoutError:
            reason = f"the investigation ran past its deadline of {hard_deadline_s:.0f} s"
            await self._end(job, reporter, JobStatus.FAILED, progress, reason)
        except PersAIError as exc:
            await self._end(job, reporter, JobStatus.FAILED, progress, exc.message)
        except Exception:
            log.exception("investigation failed unexpectedly")
            reason = "internal error in the worker (see its log)"
            await self._end(job, reporter, JobStatus.FAILED, progress, reason)
        else:
            await self._succeed(job, reporter, progress)

    async def _prepare(self, job: Job) -> tuple[Turn, ToolContext]:
        settings = self._s.settings
        endpoint = resolve(parse_datasource(job.datasource), settings)
        # the user's token, for Perses and its proxy only (None when authentication is off)
        tokens: TokenSource | None = None
        if settings.perses_api_url is not None:
            tokens = await self._s.credentials.tokens_for(job.id)
        now = utcnow()
        context = ToolContext(
            prometheus=self._api(endpoint.base_url, job.datasource, endpoint.via_perses, tokens),
            now=now,
            budget_tokens=settings.tool_result_tokens,
            time_range=job.time_range,
            perses=(
                self._api(str(settings.perses_api_url), "Perses", True, tokens)
                if settings.perses_api_url is not None
                else None
            ),
        )
        conversation = await self._s.conversations.get_for(job.owner, job.conversation_id)
        turn = Turn(
            question=job.question,
            model=job.model or settings.model or "",
            instructions=instructions(
                template=settings.system_prompt,
                now=now,
                datasource=job.datasource,
                time_range=job.time_range,
            ),
            history=history.load(conversation.messages),
        )
        return turn, context

    def _api(
        self, base_url: str, label: str, via_perses: bool, tokens: TokenSource | None
    ) -> UpstreamAPI:
        return UpstreamAPI(
            self._s.tools_http,
            base_url,
            label=label,
            tokens=tokens if via_perses else None,
            max_bytes=self._s.settings.tool_max_response_bytes,
            slots=self._s.upstream_slots,
        )

    async def _succeed(self, job: Job, reporter: JobReporter, progress: Progress) -> None:
        await reporter.flush()
        job.answer, job.finished_at = progress.answer, utcnow()
        if await self._close(job, JobStatus.SUCCEEDED, ("answer", {"text": progress.answer})):
            # after the outcome, and only with it: an attempt that was taken over adds nothing
            # to the conversation (a crash between the two leaves this turn out of its history)
            messages = history.dump(progress.messages)
            await self._s.conversations.append(job.conversation_id, messages)

    async def _end(
        self,
        job: Job,
        reporter: JobReporter,
        status: JobStatus,
        progress: Progress,
        reason: str,
    ) -> None:
        """Cancelled or failed: keep what was found, say why, and close the stream."""
        await asyncio.shield(self._end_shielded(job, reporter, status, progress, reason))

    async def _end_shielded(
        self, job: Job, reporter: JobReporter, status: JobStatus, progress: Progress, reason: str
    ) -> None:
        await reporter.flush()
        job.finished_at = utcnow()
        job.answer = progress.answer or None
        job.error = None if status is JobStatus.CANCELLED else reason
        log.info("investigation %s: %s", status.value, reason)
        if status is JobStatus.FAILED:
            await self._close(job, status, ("error", {"message": reason}))
        else:
            await self._close(job, status)

    async def _close(
        self, job: Job, status: JobStatus, *events: tuple[EventName, dict[str, Any]]
    ) -> bool:
        """The running attempt's outcome: `events` (the answer, or the error), the final state,
        then `done`, the last event of its stream, in one step; whether it was stored (not
        when the job was cancelled meanwhile or another attempt took it over)."""
        # no more leases from here: the heartbeat must not stop what follows a stored outcome
        if self.attempts.get(job.id) == job.attempts:
            del self.attempts[job.id]
        job.evidence = evidence_of(job.steps, job.datasource)
        # the terminal status event carries it too: a client following the stream has it at once
        evidence = [item.model_dump(mode="json") for item in job.evidence]
        if not await self._s.store.transition(
            job,
            status,
            (JobStatus.RUNNING,),
            in_attempt=job.attempts,
            events=events,
            evidence=evidence,
        ):
            log.info("the job changed meanwhile; this attempt's outcome is not stored")
            return False
        metrics.INVESTIGATIONS.labels(status.value).inc()
        if job.started_at is not None and job.finished_at is not None:
            duration_s = (job.finished_at - job.started_at).total_seconds()
            metrics.INVESTIGATION_DURATION.labels(status.value).observe(duration_s)
        return True
