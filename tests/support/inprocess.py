"""PersAI's API and job runner in the test's own process: the routes driven through
`httpx.ASGITransport`, jobs run by a `JobRunner` whose model is scripted.

    async with api_client(create_app(settings, redis=redis, gateway=model)) as api:
        accepted = (await api.post("/api/v1/investigations", json=...)).json()
    await job_runner(redis, settings, model).run(accepted["id"])
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI

from persai.agent import Investigator
from persai.agent.llama import ModelClient
from persai.agent.tools import Tool, Toolbox, UpstreamSlots
from persai.config import Settings
from persai.jobs import ConversationStore, JobStore
from persai.runtime import JobRunner, Services
from persai.runtime.credentials import CredentialsSource


@asynccontextmanager
async def api_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app`, whose lifespan runs around it (what it opened is closed after)."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://persai") as client,
    ):
        yield client


def job_runner(
    redis: aioredis.Redis,
    settings: Settings,
    model: ModelClient,
    *,
    tools: Sequence[Tool] = (),
    tools_http: Any = None,
    http: httpx.AsyncClient | None = None,
    worker: str = "worker-a",
) -> JobRunner:
    """A worker's runner over this Redis, with `model` and `tools` (whose requests go through
    `tools_http`, an aiohttp session, when they make any)."""
    store = JobStore(redis, retention_s=settings.job_retention_s)
    http = http or httpx.AsyncClient()
    services = Services(
        settings=settings,
        store=store,
        conversations=ConversationStore(redis),
        http=http,
        tools_http=cast(Any, tools_http),
        upstream_slots=UpstreamSlots(settings.upstream_max_concurrency),
        investigator=Investigator(model, Toolbox(tools, timeout_s=settings.tool_call_timeout_s)),
        credentials=CredentialsSource(settings, store, http),
    )
    return JobRunner(services, worker_id=worker)
