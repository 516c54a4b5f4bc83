"""Fixtures shared by the unit tests."""

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.perses import PersesStandin
from tests.support.redis import RedisServer


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`pytest.mark.anyio`) run on asyncio, as PersAI does."""
    return "asyncio"


@pytest.fixture
def perses() -> Iterator[PersesStandin]:
    """The Perses stand-in with alice (who may read project shop) and bob (who may not)."""
    standin = PersesStandin()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_user("bob", "bob-password")
    with standin:
        yield standin


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the unit tests that need one (each starts on an empty one)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
async def redis(shared_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the shared redis-server, emptied first."""
    client = aioredis.Redis.from_url(shared_redis.url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()
