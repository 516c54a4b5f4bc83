"""One asyncio event loop per worker process, in a thread of its own, carrying every
investigation that process runs.

Investigations spend their time waiting on the model and on Prometheus, so one loop carries
hundreds at once. What each of them costs the loop's one core decides how many fit: the loop
is uvloop's, the tools' HTTP goes through aiohttp, and a job's Redis writes are few and
pipelined. Celery's thread pool only hands job ids over and waits (its threads are
cheap while they wait); deadlines and cancellation are the jobs' own, since Celery's thread
pool cannot enforce them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from typing import Any

import aiohttp
import httpx
import redis.asyncio as aioredis
import uvloop
from celery import Celery

from persai import heap, metrics
from persai.agent import Investigator
from persai.agent.llama import ModelClient, ModelGateway
from persai.agent.tools import ALL_TOOLS, PROMETHEUS_TOOLS, Tool, Toolbox, UpstreamSlots
from persai.alerts import load as load_alerts
from persai.alerts.delivery import Courier
from persai.config import Settings
from persai.credentials import cookieless_jar
from persai.errors import PersAIError, StoreUnavailable
from persai.jobs import ConversationStore, JobStore, LostJobSweep, keys
from persai.queue import Publisher
from persai.redis_client import connect_to
from persai.runtime.credentials import CredentialsSource
from persai.runtime.runner import JobRunner, Services

log = logging.getLogger(__name__)

STORE_RETRIES = 60
STORE_RETRY_S = 2.0
"""A job whose Redis went away is tried again every 2 s for 2 minutes."""


class Engine:
    def __init__(
        self,
        settings: Settings,
        redis_url: str,
        *,
        celery: Celery,
        gateway: ModelClient | None = None,
    ) -> None:
        """`celery` is the app whose queue a job goes back to when its worker was lost;
        `gateway` replaces the Llama Stack gateway (benchmarks measure PersAI's own path)."""
        self._settings = settings
        self._redis_url = redis_url
        self._celery = celery
        self._queue: Publisher | None = None
        self._gateway = gateway
        self._store: JobStore | None = None
        self._sweep: LostJobSweep | None = None
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="persai-engine")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._runner: JobRunner | None = None
        self._resources = contextlib.AsyncExitStack()
        """What `_open` opened, closed by `_close` in the reverse order."""

    def start(self) -> None:
        try:
            metrics.serve(self._settings.worker_metrics_port, self._settings.worker_metrics_host)
        except OSError as exc:  # e.g. several workers on one host with the same port
            log.warning(
                "worker metrics not served on port %d: %s", self._settings.worker_metrics_port, exc
            )
        self._thread.start()
        self._call(self._open())
        heap.settle()
        log.info("worker %s ready", self.worker_id)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def run_job(self, job_id: str) -> None:
        """Run a job on the loop and wait for it (called from a Celery pool thread)."""
        self._call(self._run(job_id))

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _open(self) -> None:
        settings = self._settings
        resources = self._resources
        # every job of this process may wait on Redis at once, plus the background tasks
        redis = connect_to(
            settings, patience_s=15.0, max_connections=settings.worker_concurrency + 20
        )
        resources.push_async_callback(redis.aclose)
        # no cookies kept: Perses prefers cookies to the bearer token of the user at hand
        http = await resources.enter_async_context(
            httpx.AsyncClient(
                cookies=cookieless_jar(),
                timeout=httpx.Timeout(settings.tool_call_timeout_s, connect=5.0),
            )
        )
        tools_http = await resources.enter_async_context(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=30),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=5.0, sock_read=settings.tool_call_timeout_s
                ),
            )
        )
        gateway = self._gateway or ModelGateway(
            settings.llama_stack_url or "", timeout_s=settings.model_call_timeout_s
        )
        resources.push_async_callback(gateway.aclose)
        store = JobStore(redis, retention_s=settings.job_retention_s)
        services = Services(
            settings=settings,
            store=store,
            conversations=ConversationStore(redis),
            http=http,
            tools_http=tools_http,
            upstream_slots=UpstreamSlots(settings.upstream_max_concurrency),
            investigator=Investigator(
                gateway, Toolbox(self._tools(), timeout_s=settings.tool_call_timeout_s)
            ),
            credentials=CredentialsSource(settings, store, http),
        )
        self._runner = JobRunner(services, worker_id=self.worker_id)
        self._queue = Publisher(self._celery)
        self._store = store
        self._sweep = LostJobSweep(redis, grace_s=settings.requeue_grace_s)
        self._background = [
            asyncio.create_task(self._listen_for_cancels(redis)),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._recover_orphans()),
        ]
        if settings.alerts_config is not None:  # alert investigations' notifications
            notify_http = await resources.enter_async_context(
                httpx.AsyncClient(timeout=settings.alerts_notify_timeout_s, follow_redirects=False)
            )
            courier = Courier(settings, load_alerts(settings.alerts_config), redis, notify_http)
            self._background.append(asyncio.create_task(courier.run()))

    def _tools(self) -> tuple[Tool, ...]:
        """Perses's own tools only where there is a Perses to ask."""
        return ALL_TOOLS if self._settings.perses_api_url is not None else PROMETHEUS_TOOLS

    async def _close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._resources.aclose()

    async def _run(self, job_id: str) -> None:
        assert self._runner is not None, "Engine.start() was not called"
        runner = self._runner
        for attempt in range(STORE_RETRIES):
            # a second message for a job this process runs (or ran, in an attempt since taken
            # over): once that run ends, this one finds the job as it is then
            while (running := self._tasks.get(job_id)) is not None:
                await asyncio.wait([running])
            task = asyncio.create_task(runner.run(job_id))
            self._tasks[job_id] = task
            try:
                await task
                return
            except asyncio.CancelledError:
                log.info("job %s stopped: cancelled", job_id)
                return
            except StoreUnavailable as exc:
                # Redis is down for longer than the client's retries: the message must not be
                # dropped, so keep trying; an interrupted job is picked up from its state.
                log.warning("job %s: %s; trying again (%d)", job_id, exc.message, attempt + 1)
                await asyncio.sleep(STORE_RETRY_S)
            finally:
                if self._tasks.get(job_id) is task:
                    del self._tasks[job_id]
        log.error("job %s: Redis stayed unreachable; leaving it to crash recovery", job_id)

    async def _listen_for_cancels(self, redis: aioredis.Redis) -> None:
        """Cancel requests reach every worker; the one running the job stops it at once."""
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(keys.CANCEL_CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "message" and (
                            task := self._tasks.get(message["data"])
                        ):
                            task.cancel()
            except (OSError, aioredis.RedisError) as exc:
                log.warning("cancel listener lost Redis (%s); retrying", exc)
                for job_id, task in list(self._tasks.items()):  # missed while away?
                    with contextlib.suppress(PersAIError, aioredis.RedisError):
                        if self._store and await self._store.cancel_requested(job_id):
                            task.cancel()
                await asyncio.sleep(1.0)

    async def _heartbeat(self) -> None:
        """Every few seconds: this worker is alive (for /readyz; stamped by Redis's clock, not
        this host's), and so are its jobs (leases, each in its attempt). A job whose attempt is
        over here (another worker took it over after this one stalled, or it was cancelled) is
        stopped."""
        assert self._store is not None
        assert self._runner is not None
        while True:
            try:
                await self._store.beat(self.worker_id)
                leases = dict(self._runner.attempts)
                over = await self._store.renew(
                    leases, self.worker_id, self._settings.heartbeat_timeout_s
                )
                for job_id in over:
                    task = self._tasks.get(job_id)
                    if task is not None and self._runner.attempts.get(job_id) == leases[job_id]:
                        log.warning("job %s: this attempt is over here; stopping it", job_id)
                        task.cancel()
            except (PersAIError, aioredis.RedisError) as exc:
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self._settings.heartbeat_interval_s)

    async def _recover_orphans(self) -> None:
        """One worker at a time: running jobs whose worker died (no lease renewal) and queued
        jobs whose message was lost are queued again, each with a new message in the same
        step as its state."""
        assert self._store is not None
        assert self._runner is not None
        assert self._queue is not None
        assert self._sweep is not None
        interval_s = self._settings.heartbeat_interval_s
        while True:
            await asyncio.sleep(interval_s)
            try:
                if not await self._store.reaper_lock(self.worker_id, interval_s):
                    continue
                for job_id in await self._store.orphans():
                    if job_id not in self._tasks:
                        await self._runner.recover(job_id, self._queue.entry(job_id))
                await self._sweep.sweep(self._queue.entry)
            except (PersAIError, aioredis.RedisError) as exc:
                log.warning("looking for orphaned jobs failed: %s", exc)
