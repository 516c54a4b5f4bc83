"""The Redis client that pipelines by itself, against a real redis-server."""

import asyncio

import pytest
from redis.exceptions import ConnectionError, DataError, NoScriptError, ResponseError

from persai.redis_client import Redis, connect
from tests.support.redis import RedisServer

pytestmark = pytest.mark.anyio


def client(server: RedisServer, patience_s: float = 1.0) -> Redis:
    return connect(server.url, patience_s=patience_s, max_connections=50)


async def test_commands_issued_at_once_share_one_connection_and_keep_their_replies(
    redis_server: RedisServer,
) -> None:
    redis = client(redis_server)
    try:
        await asyncio.gather(*(redis.set(f"k{i}", i) for i in range(200)))
        values = await asyncio.gather(*(redis.get(f"k{i}") for i in range(200)))
        assert values == [str(i) for i in range(200)]
        # one connection carried the bursts: not 200, nor the pool's limit of 50
        assert (await redis.info("clients"))["connected_clients"] == 1

        # a task's own commands stay in order, interleaved with others' in one pipeline
        async def count_up(key: str) -> list[int]:
            return [await redis.incr(key) for _ in range(20)]

        runs = await asyncio.gather(*(count_up(f"n{i}") for i in range(30)))
        assert all(run == list(range(1, 21)) for run in runs)
    finally:
        await redis.aclose()


async def test_a_failing_command_fails_only_its_caller(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    try:
        await redis.rpush("a-list", "x")
        wrong_type, fine, unencodable, also_fine = await asyncio.gather(
            redis.get("a-list"),
            redis.set("s", "v"),
            redis.set("t", None),  # type: ignore[arg-type]
            redis.lrange("a-list", 0, -1),
            return_exceptions=True,
        )
        assert isinstance(wrong_type, ResponseError)
        assert "WRONGTYPE" in str(wrong_type)
        assert isinstance(unencodable, DataError)
        assert fine is True
        assert also_fine == ["x"]
        # alone, too: its own error, not a broken client
        with pytest.raises(ResponseError):
            await redis.incr("a-list")
        assert await redis.get("s") == "v"
    finally:
        await redis.aclose()


async def test_scripts_are_loaded_again_after_a_script_flush(redis_server: RedisServer) -> None:
    """A restarted Redis has no scripts: each caller's EVALSHA fails alone and is retried."""
    redis = client(redis_server)
    try:
        double = redis.register_script("return tonumber(ARGV[1]) * 2")
        assert await double(args=[2]) == 4
        await redis.script_flush()
        with pytest.raises(NoScriptError):
            await redis.evalsha(double.sha, 0, 1)
        assert await asyncio.gather(*(double(args=[i]) for i in range(50))) == [
            i * 2 for i in range(50)
        ]
    finally:
        await redis.aclose()


async def test_blocking_reads_do_not_hold_up_other_commands(redis_server: RedisServer) -> None:
    redis = client(redis_server)
    try:
        waiting = asyncio.ensure_future(redis.xread({"stream": "$"}, block=3000))
        await asyncio.sleep(0.1)
        before = asyncio.get_running_loop().time()
        assert await asyncio.gather(*(redis.incr("c") for _ in range(10))) == list(range(1, 11))
        assert asyncio.get_running_loop().time() - before < 1.0  # not behind the 3 s block
        await redis.xadd("stream", {"f": "v"})
        [[_, [(_, fields)]]] = await asyncio.wait_for(waiting, 5)
        assert fields == {"f": "v"}
    finally:
        await redis.aclose()


async def test_a_cancelled_caller_leaves_the_others_their_replies(
    redis_server: RedisServer,
) -> None:
    redis = client(redis_server)
    try:
        tasks = [asyncio.ensure_future(redis.set(f"k{i}", i)) for i in range(10)]
        await asyncio.sleep(0)  # all queued, not yet sent
        tasks[3].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[3], asyncio.CancelledError)
        assert [r for i, r in enumerate(results) if i != 3] == [True] * 9
        assert await redis.get("k9") == "9"
    finally:
        await redis.aclose()


async def test_redis_down_fails_every_caller_then_recovers(redis_server: RedisServer) -> None:
    redis = client(redis_server, patience_s=0.4)
    try:
        await redis.set("k", "v")
        redis_server.stop()
        results = await asyncio.gather(*(redis.get("k") for _ in range(20)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        redis_server.start()  # AOF: the key is still there
        assert await asyncio.gather(*(redis.get("k") for _ in range(20))) == ["v"] * 20
    finally:
        await redis.aclose()
