"""Redis clients with a retry policy that rides out a Redis restart."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError


def connect(url: str, *, patience_s: float) -> aioredis.Redis:
    """A client whose commands retry on a lost connection for about `patience_s` seconds.

    After a restart every pooled connection is stale; a retry reconnects. The API is impatient
    (it answers 503 at once while Redis is down); workers wait longer, so that a short outage
    does not fail the investigations they carry.
    """
    cap_s = min(2.0, max(0.1, patience_s / 4))
    retries = max(1, round(patience_s / cap_s) + 2)
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=cap_s, base=0.05), retries),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
    )
