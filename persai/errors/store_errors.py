"""Redis failures as PersAI's StoreUnavailable (a 503 saying what is wrong): the one mapping.

Two kinds of failure are the store's, not the request's: Redis cannot be reached, and Redis
refuses writes (out of memory under `maxmemory-policy noeviction`, a read-only replica, a disk
it cannot persist to, too few replicas in sync). Any other error reply is a bug of ours and
stays what it is.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from persai.errors.exceptions import StoreUnavailable

UNREACHABLE_RETRY_S = 5
REFUSAL_RETRY_S = 30
"""Seconds a client is asked to wait: a restart is quick; memory or a disk takes an operator."""

_REFUSALS = {
    "OOM": "it is out of memory",
    "READONLY": "it is a read-only replica (a failover may be under way)",
    "MISCONF": "it cannot persist its data to disk",
    "NOREPLICAS": "too few replicas are in sync with it",
}
"""Error codes of write refusals (the first word of Redis's reply) and what they mean."""


def write_refusal(exc: ResponseError) -> str | None:
    """Why Redis refused a write ("it is out of memory"), or None for any other error reply."""
    if isinstance(exc, OutOfMemoryError):
        return _REFUSALS["OOM"]
    if isinstance(exc, ReadOnlyError):
        return _REFUSALS["READONLY"]
    # redis-py strips the code from the replies it has a class for (OOM, READONLY); the
    # others keep it. A refusal inside a Lua script comes back with the code first as well.
    code = str(exc).split(" ", 1)[0].upper()
    return _REFUSALS.get(code)


def store_unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The StoreUnavailable that `exc` amounts to, or None when it is not the store's fault."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
        # the exception's text names Redis's address, which is no client's business
        message = f"Redis is unreachable: {type(exc).__name__}"
        return StoreUnavailable(message, retry_after_s=UNREACHABLE_RETRY_S)
    if isinstance(exc, ResponseError) and (reason := write_refusal(exc)) is not None:
        return StoreUnavailable(f"Redis refuses writes: {reason}", retry_after_s=REFUSAL_RETRY_S)
    return None
