"""Redis clients with a retry policy that rides out a Redis restart, and that pipeline by
themselves the commands issued at once by many tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import (
    BusyLoadingError,
    ConnectionError,
    DataError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from persai.config import Settings
from persai.errors import store_unavailable
from persai.version import __version__

SOCKET_TIMEOUT_S = 30.0
"""Longest wait for a reply; blocking reads (XREAD BLOCK) must block for less than this."""


UNPIPELINED = frozenset(
    {"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP"}
    | {"XREAD", "XREADGROUP", "WAIT", "WAITAOF"}
)
"""Commands that may block on the server: sent on a connection of their own, never behind
others (nor others behind them)."""

_OWN_ERRORS = (ResponseError, DataError)
"""Errors of one command (its reply, or an argument that cannot be sent), not of the link."""

_Pending = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class Redis(aioredis.Redis):
    """A client that sends the commands its tasks issue during one pass of the event loop as
    one pipeline: one write, one read, one connection for all of them.

    A worker's investigations advance in bursts (hundreds of them are answered by the model at
    about the same moment), and each step writes to Redis. redis-py spends about 100 µs of CPU
    on a command sent alone and about 25 µs on one in a pipeline; the CPU of the loop is what
    limits how many investigations one process carries. Replies and errors go to each command's
    caller as if it had been sent alone; the order of one task's commands is kept, since a task
    waits for each reply before its next command. Blocking commands (`UNPIPELINED`) and
    explicit pipelines and transactions are sent as they are.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[_Pending] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.single_connection_client or args[0] in UNPIPELINED:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._send_pending)
        self._pending.append((args, options, reply))
        return await reply

    def _send_pending(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            results = await self._replies(batch)
        except Exception as exc:  # Redis unreachable: for everyone
            for _, _, reply in batch:
                if not reply.done():
                    reply.set_exception(exc)
            return
        except BaseException:  # cancelled: the loop is closing
            for _, _, reply in batch:
                reply.cancel()
            raise
        for (_, _, reply), result in zip(batch, results, strict=True):
            if reply.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(result, _OWN_ERRORS):
                reply.set_exception(result)
            else:
                reply.set_result(result)

    async def _replies(self, batch: list[_Pending]) -> list[Any]:
        """Each command's reply, or its own error (the others' replies are not affected)."""
        if len(batch) == 1:  # a pipeline of one costs more than the command alone
            args, options, _ = batch[0]
            try:
                return [await super().execute_command(*args, **options)]  # type: ignore[no-untyped-call]
            except _OWN_ERRORS as exc:
                return [exc]
        pipe = self.pipeline(transaction=False)
        for args, options, _ in batch:
            pipe.execute_command(*args, **options)
        try:
            return await pipe.execute(raise_on_error=False)
        except DataError:  # an argument that cannot be encoded stops the pipeline before
            # anything is sent: send each alone, so that only its command fails
            return [(await self._replies([pending]))[0] for pending in batch]

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)
        await super().aclose(close_connection_pool)


def connect(
    url: str,
    *,
    patience_s: float,
    max_connections: int,
    sentinels: Sequence[tuple[str, int]] = (),
    master_name: str = "",
) -> Redis:
    """A client whose commands retry on a lost connection for about `patience_s` seconds.

    After a restart every pooled connection is stale; a retry reconnects. The API is impatient
    (it answers 503 at once while Redis is down); workers wait longer, so that a short outage
    does not fail the investigations they carry. Past `max_connections` a command waits for a
    free connection instead of failing.

    With `sentinels`, each new connection goes to the master they name for `master_name`
    (`url` gives the database and credentials only); after a failover the old master's
    connections fail (or answer READONLY, which counts as a lost connection) and the retries
    reconnect to the new one as soon as the Sentinels name it.
    """
    cap_s = min(2.0, max(0.1, patience_s / 4))
    # made once: by default every new connection looks redis-py's version up in the installed
    # packages' metadata, which costs more than the connection itself
    driver = DriverInfo().add_upstream_driver("persai", __version__)
    retries = max(1, round(patience_s / cap_s) + 2)
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": SOCKET_TIMEOUT_S,
        "decode_responses": True,
        "socket_connect_timeout": 2.0,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=cap_s, base=0.05), retries),
        "retry_on_error": [ConnectionError, TimeoutError, BusyLoadingError],
        "driver_info": driver,
    }
    if not sentinels:
        pool: BlockingConnectionPool = BlockingConnectionPool.from_url(url, **options)
    else:
        where = {k: v for k, v in parse_url(url).items() if k not in ("host", "port", "path")}
        manager = Sentinel(  # type: ignore[no-untyped-call]
            list(sentinels),
            sentinel_kwargs={"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
        )
        options["connection_class"] = _SentinelConnection
        pool = _SentinelPool(master_name, manager, **where, **options)  # type: ignore[no-untyped-call]
    return cast(Redis, Redis.from_pool(pool))  # from_pool makes its own class


def connect_to(settings: Settings, *, patience_s: float, max_connections: int) -> Redis:
    """`connect` to the Redis that `settings` name (PERSAI_REDIS_URL, or its Sentinels)."""
    if not settings.redis_url:
        raise ValueError("PERSAI_REDIS_URL (or PERSAI_REDIS_SENTINELS) is required")
    return connect(
        settings.redis_url,
        patience_s=patience_s,
        max_connections=max_connections,
        sentinels=settings.sentinels,
        master_name=settings.redis_master_name,
    )


class _SentinelConnection(SentinelManagedConnection):
    """A connection to the master the Sentinels name now, however it (re)connects.

    redis-py reconnects a lost connection when it sends its next command, and from there goes
    back to the address it had (`connect_check_health`, retrying that address), not through
    the Sentinels: after a failover the retries all went to the dead master. Each connect
    asks the Sentinels first, and one that fails is left to the command's retry policy.
    """

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self.is_connected:
            return
        self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health=check_health, retry_socket_connect=False)


class _SentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """redis-py's pool of connections to the master the Sentinels name, waiting for a free
    connection past its size (as `BlockingConnectionPool`) instead of failing."""


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn Redis being unreachable, or refusing writes, into StoreUnavailable (a 503 with
    the reason); any other error reply stays what it is."""
    try:
        yield
    except (RedisError, OSError) as exc:
        mapped = store_unavailable(exc)
        if mapped is None:
            raise
        raise mapped from exc
