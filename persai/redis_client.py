"""Redis clients with a retry policy that rides out a Redis restart."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from persai.version import __version__

SOCKET_TIMEOUT_S = 30.0
"""Longest wait for a reply; blocking reads (XREAD BLOCK) must block for less than this."""


def connect(url: str, *, patience_s: float, max_connections: int) -> aioredis.Redis:
    """A client whose commands retry on a lost connection for about `patience_s` seconds.

    After a restart every pooled connection is stale; a retry reconnects. The API is impatient
    (it answers 503 at once while Redis is down); workers wait longer, so that a short outage
    does not fail the investigations they carry. Past `max_connections` a command waits for a
    free connection instead of failing.
    """
    cap_s = min(2.0, max(0.1, patience_s / 4))
    # made once: by default every new connection looks redis-py's version up in the installed
    # packages' metadata, which costs more than the connection itself
    driver = DriverInfo().add_upstream_driver("persai", __version__)
    retries = max(1, round(patience_s / cap_s) + 2)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=SOCKET_TIMEOUT_S,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=cap_s, base=0.05), retries),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        driver_info=driver,
    )
    return aioredis.Redis.from_pool(pool)
