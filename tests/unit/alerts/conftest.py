"""An in-process PersAI API with an alert receiver, over a real redis-server (the claims are
Lua scripts that two replicas race on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from persai.config import Settings
from persai.server import create_app
from tests.support.alerts import TOKEN, write_config
from tests.support.redis import RedisServer


@pytest.fixture
def redis_server(shared_redis: RedisServer) -> RedisServer:
    """The unit tests' one redis-server (tests/unit/conftest.py), which `redis` empties."""
    return shared_redis


@pytest.fixture
async def replicas(
    redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two API replicas (two apps, one Redis), each an httpx client with the receiver's token."""
    settings = Settings(
        redis_url=redis_server.url,
        auth=False,
        model="m",
        datasources="prom=http://127.0.0.1:9",
        alerts_config=write_config(tmp_path),
    )
    async with AsyncExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=f"http://replica-{name}",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            clients.append(await stack.enter_async_context(client))
        yield clients
