"""/readyz and the workers' heartbeats: "seen recently" is judged by Redis's clock, so hosts whose
clocks disagree (by 30 s, by 10 minutes) neither hide a live worker nor keep a stopped one.

A real `redis-server`: its clock is not this process's, as on separate hosts (fakeredis would
read the very clock the test sets off)."""

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from persai.config import Settings
from persai.jobs import JobStore, keys
from persai.server import create_app
from persai.server.ops import WORKER_SEEN_S
from tests.support.redis import RedisServer

pytestmark = pytest.mark.anyio

SKEWS_S = [-600.0, -30.0, 30.0, 600.0]
"""How far off one host's clock is: 10 minutes or 30 s, behind or ahead."""


@pytest.fixture
def worker(redis: aioredis.Redis) -> JobStore:
    """What a worker writes its heartbeat with."""
    return JobStore(redis, retention_s=60)


@pytest.fixture
async def api(redis: aioredis.Redis, shared_redis: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(redis_url=shared_redis.url, auth=False))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://persai") as client,
    ):
        yield client


def clock_off_by(skew_s: float) -> Callable[[], float]:
    true_time = time.time
    return lambda: true_time() + skew_s


async def worker_check(api: httpx.AsyncClient) -> dict[str, Any]:
    body = (await api.get("/readyz")).json()
    check: dict[str, Any] = body["checks"]["worker"]
    return check


@pytest.mark.parametrize("skew_s", SKEWS_S)
async def test_a_worker_whose_clock_is_off_counts_as_seen(
    api: httpx.AsyncClient, worker: JobStore, monkeypatch: pytest.MonkeyPatch, skew_s: float
) -> None:
    with monkeypatch.context() as host:
        host.setattr(time, "time", clock_off_by(skew_s))
        await worker.beat("worker-a")
    assert await worker_check(api) == {"ok": True, "workers": 1}


@pytest.mark.parametrize("skew_s", SKEWS_S)
async def test_an_api_whose_clock_is_off_sees_the_worker(
    api: httpx.AsyncClient, worker: JobStore, monkeypatch: pytest.MonkeyPatch, skew_s: float
) -> None:
    await worker.beat("worker-a")
    with monkeypatch.context() as host:
        host.setattr(time, "time", clock_off_by(skew_s))
        assert await worker_check(api) == {"ok": True, "workers": 1}


async def test_a_stopped_worker_is_not_ready_once_the_window_has_passed(
    api: httpx.AsyncClient, worker: JobStore, redis: aioredis.Redis
) -> None:
    await worker.beat("worker-a")
    await worker.beat("worker-b")
    assert await worker_check(api) == {"ok": True, "workers": 2}
    # worker-b stopped a window ago, by Redis's clock: its last heartbeat is all that is left
    seconds, _ = await redis.time()
    await redis.hset(keys.WORKERS, "worker-b", str(seconds - WORKER_SEEN_S - 1))
    assert await worker_check(api) == {"ok": True, "workers": 1}
    await redis.hset(keys.WORKERS, "worker-a", str(seconds - WORKER_SEEN_S - 1))
    assert await worker_check(api) == {
        "ok": False,
        "reason": f"no worker heartbeat in the last {WORKER_SEEN_S:.0f} s",
    }
    response = await api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
