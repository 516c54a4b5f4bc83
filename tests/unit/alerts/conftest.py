"""An in-process PersAI API with an alert receiver, over a real redis-server (the claims are
Lua scripts that two replicas race on)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis.asyncio as aioredis

from persai.config import Settings
from persai.server import create_app
from tests.support.redis import RedisServer

TOKEN = "alertmanager-token-0123456789"
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
EXPR = 'sum(rate(http_requests_total{code=~"5.."}[5m])) by (service) > 1'


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


def write_config(
    directory: Path, datasource: str = "/proxy/globaldatasources/prom", **receiver: Any
) -> Path:
    (directory / "token").write_text(TOKEN + "\n")
    lines = [
        "receivers:",
        "  - name: oncall",
        f"    token_file: {directory / 'token'}",
        f"    datasource: {datasource}",
        *(f"    {key}: {value}" for key, value in receiver.items()),
    ]
    path = directory / "alerts.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


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


def alert(fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "CheckoutErrors", "service": "checkout-api", **labels},
        "annotations": {"summary": "checkout 5xx above 1/s"},
        "startsAt": STARTED.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?"
        + urlencode({"g0.expr": EXPR, "g0.tab": "1"}),
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], status: str = "firing", group: str = "g1") -> dict[str, Any]:
    """What Alertmanager 0.25 posts (notify/webhook/webhook.go)."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="CheckoutErrors", group="{group}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "oncall",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors", "service": "checkout-api"},
        "commonAnnotations": {"summary": "checkout 5xx above 1/s"},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
