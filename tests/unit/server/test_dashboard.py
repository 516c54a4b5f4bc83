"""GET /api/v1/investigations/{id}/dashboard over a real Redis: the owner's only."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from persai.config import Settings
from persai.jobs import Job, JobStore
from persai.server import create_app
from tests.support.jobs import job_with, range_step
from tests.support.redis import RedisServer

pytestmark = pytest.mark.anyio


@dataclass
class Served:
    api: httpx.AsyncClient
    store: JobStore


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The API (auth off: the anonymous user) and the job store, over one real Redis."""
    redis_server = RedisServer(tmp_path / "redis").start()
    app = create_app(Settings(redis_url=redis_server.url, auth=False))
    redis = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as api,
        ):
            yield Served(api, JobStore(redis, retention_s=60))
    finally:
        await redis.aclose()
        redis_server.stop()


async def stored(store: JobStore, job: Job) -> Job:
    await store.create(job, None, 60)
    return job


async def test_the_owner_gets_the_dashboard(served: Served) -> None:
    api, store = served.api, served.store
    job = job_with(range_step("rate(errors[5m])"))
    job.owner = "anonymous"
    await stored(store, job)
    response = await api.get(f"/api/v1/investigations/{job.id}/dashboard")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dashboard"]["kind"] == "Dashboard"
    assert body["dashboard"]["metadata"]["project"] == "shop"
    assert body["window"]["end"] == "2026-01-01T11:30:00Z"


async def test_another_users_job_and_bad_input_are_refused(served: Served) -> None:
    api, store = served.api, served.store
    theirs = await stored(store, job_with(range_step("up")))  # owned by alice
    assert (await api.get(f"/api/v1/investigations/{theirs.id}/dashboard")).status_code == 404
    assert (await api.get("/api/v1/investigations/nope/dashboard")).status_code == 404
    mine = job_with(datasource="/proxy/globaldatasources/prom")
    mine.id, mine.owner = "f" * 32, "anonymous"
    await stored(store, mine)
    empty = await api.get(f"/api/v1/investigations/{mine.id}/dashboard")
    assert empty.status_code == 409
    assert empty.json()["error"]["type"] == "conflict"
    bad = await api.get(f"/api/v1/investigations/{mine.id}/dashboard", params={"project": "../x"})
    assert bad.status_code == 422
