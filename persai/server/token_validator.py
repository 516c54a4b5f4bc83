"""Checking Perses tokens for the API, with the verdicts cached in Redis.

A cookie client is trusted when Perses accepts its refresh token (`POST /api/auth/refresh`), and
the access token PersAI then forwards is the one Perses returned: Perses gives the access cookies
the lifetime of the refresh token (perses internal/api/crypto/jwt.go), so a browser keeps sending
an access token that expired long ago, and its signature is never checked here. A bearer client
is trusted when `GET /api/v1/user/whoami` accepts its access token. Identity is what Perses
confirmed: the `sub` of the access token Perses returned, or the user whoami named; a client
token that names somebody else is refused.

A verdict is keyed by what Perses confirmed (the refresh token, or the bearer token): whatever a
client puts beside a valid refresh token, it costs no Perses call and no cache entry.

Redis layout (no token is ever stored in clear, only its SHA-256, or sealed):
    persai:auth:<sha256>        JSON verdict {"user": ..., "access": <sealed>} or {"error": ...},
                                with a TTL; `access` is the access token Perses returned
    persai:auth:<sha256>:lock   the holder's random nonce, SET NX PX while Perses is being asked
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import redis.asyncio as aioredis
from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr
from redis.exceptions import RedisError

from persai import metrics
from persai.credentials import Credentials, Sealer, SealError
from persai.errors import StoreUnavailable, Unauthenticated, UpstreamError
from persai.jobs import keys
from persai.perses_client import MIN_PERSES_VERSION, PersesAuth
from persai.tokens import MAX_TOKEN_BYTES, TokenClaims, parse_token

__all__ = [
    "KEY_PREFIX",
    "MAX_TOKEN_BYTES",
    "MIN_PERSES_VERSION",
    "TokenClaims",
    "TokenValidator",
    "Verdict",
    "parse_token",
]

logger = logging.getLogger(__name__)

KEY_PREFIX = keys.AUTH_PREFIX
_REJECTION_TTL_S = 60.0  # how long a refused token is remembered
_RECENT_S = 5.0  # how long this process trusts a verdict without asking Redis again
_RECENT_MAX = 10_000  # verdicts remembered at most (then forgotten all at once)
_POLL_S = 0.02  # how often a process waiting on another one's Perses call looks for its verdict
_RETRY_AFTER_S = 5  # what a 503 tells the client to wait while Perses or Redis is down
_FORWARD_MARGIN_S = 60.0  # a cached access token is forwarded only while it has this much left
_RELEASE_LOCK = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
)


class Verdict(BaseModel):
    """Perses accepted the token(s): who the caller is, the access token to forward for them
    (for cookie clients, the one Perses returned), and until when it is good."""

    model_config = ConfigDict(frozen=True)

    user: str
    access_token: SecretStr
    expires_at: AwareDatetime


def _cache_key(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return keys.auth(digest)


@dataclass(frozen=True)
class _Decision:
    """What Perses said: a user and the access token to forward for them until `expires_at`,
    or why the token was refused (a message without the token)."""

    user: str | None = None
    error: str | None = None
    access_token: str | None = None
    expires_at: float | None = None
    """Seconds since the epoch; None: as long as the token that was checked."""


Ask = Callable[[], Awaitable[_Decision]]


class TokenValidator:
    """Perses-backed token checks with verdicts cached in Redis and one Perses call per token.

    Concurrent checks of one token share one Perses call: within a process through a shared
    task, across processes through a short Redis lock whose holder's verdict the others wait for
    (a holder that dies leaves the lock to expire, and the next waiter asks Perses itself). The
    access tokens Perses returns are cached sealed with `sealer`.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        http: httpx.AsyncClient,
        perses_api_url: str,
        cache_ttl_s: int,
        *,
        sealer: Sealer,
        lock_ttl_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._perses = PersesAuth(http, perses_api_url)
        self._cache_ttl_s = cache_ttl_s
        self._sealer = sealer
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[_Decision]] = {}
        self._recent: dict[str, tuple[float, _Decision]] = {}
        """Accepted tokens of the last few seconds: key -> (until, decision), to spare Redis a
        read on every request of a client that polls."""

    async def validate_cookie(self, access_token: str, refresh_token: str) -> Verdict:
        """Trust a browser's session when Perses accepts its refresh token, for the user of the
        access token Perses returns; the access token the client sent only has to be shaped
        like one and name the same user (it may have expired: its cookie outlives it)."""
        now = self._clock()
        claimed = parse_token(access_token, now=now, expired_ok=True).subject
        refresh = parse_token(refresh_token, what="refresh token", now=now)

        async def ask() -> _Decision:
            return await self._ask_refresh(refresh_token)

        decision = await self._decide(_cache_key("cookie", refresh_token), ask, refresh.expires_at)
        if decision.user != claimed:
            logger.warning("refused a session whose access cookie names another user")
            raise Unauthenticated("the access token names another user than Perses confirmed")
        return _verdict(decision)

    async def validate_bearer(self, access_token: str) -> Verdict:
        """Trust a bearer token when Perses's whoami accepts it; the user is whoami's answer."""
        claims = parse_token(access_token, now=self._clock())

        async def ask() -> _Decision:
            return await self._ask_whoami(access_token, claims.subject)

        decision = await self._decide(_cache_key("bearer", access_token), ask, claims.expires_at)
        return _verdict(replace(decision, access_token=access_token, expires_at=claims.expires_at))

    # The cache and single flight -----------------------------------------------------------

    async def _decide(self, key: str, ask: Ask, expires_at: float) -> _Decision:
        now = self._clock()
        until, recent = self._recent.get(key, (0.0, None))
        if recent is not None and now < until:
            metrics.AUTH_CACHE.labels("hit").inc()
            return recent
        try:
            decision = await self._read(key)
            metrics.AUTH_CACHE.labels("miss" if decision is None else "hit").inc()
            if decision is None:
                decision = await self._shared(key, ask, expires_at)
        except RedisError as exc:
            raise StoreUnavailable(
                f"Redis is unavailable ({type(exc).__name__})", retry_after_s=_RETRY_AFTER_S
            ) from exc
        if decision.user is None:
            raise Unauthenticated(decision.error or "Perses did not accept the token")
        if len(self._recent) >= _RECENT_MAX:
            self._recent.clear()
        self._recent[key] = (min(now + _RECENT_S, self._good_until(decision, expires_at)), decision)
        return decision

    @staticmethod
    def _good_until(decision: _Decision, expires_at: float) -> float:
        """Until when a verdict may be used: the checked token's expiry, and while the access
        token to forward has the margin left that the worker needs."""
        if decision.expires_at is None:
            return expires_at
        return min(expires_at, decision.expires_at - _FORWARD_MARGIN_S)

    async def _shared(self, key: str, ask: Ask, expires_at: float) -> _Decision:
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._decide_once(key, ask, expires_at))
            self._inflight[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(future)

    def _forget(self, key: str, done: asyncio.Future[_Decision]) -> None:
        self._inflight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here so that nobody waiting is not an error

    async def _decide_once(self, key: str, ask: Ask, expires_at: float) -> _Decision:
        lock_key, nonce = keys.auth_lock(key), secrets.token_hex(16)
        deadline = time.monotonic() + 2 * self._lock_ttl_ms / 1000
        while True:
            if await self._redis.set(lock_key, nonce, nx=True, px=self._lock_ttl_ms):
                try:
                    return await self._ask_and_store(key, ask, expires_at)
                finally:
                    await self._redis.eval(_RELEASE_LOCK, 1, lock_key, nonce)
            await asyncio.sleep(_POLL_S)
            decision = await self._read(key)
            if decision is not None:
                return decision
            if time.monotonic() > deadline:
                logger.warning("gave up waiting for another process's Perses token check")
                return await self._ask_and_store(key, ask, expires_at)

    async def _ask_and_store(self, key: str, ask: Ask, expires_at: float) -> _Decision:
        decision = await ask()
        until = self._good_until(decision, expires_at)
        ttl_s = min(float(self._cache_ttl_s), until - self._clock())
        if decision.user is None:
            ttl_s = min(ttl_s, _REJECTION_TTL_S)
        if ttl_s * 1000 >= 1:
            await self._redis.set(key, self._dump(key, decision), px=int(ttl_s * 1000))
        return decision

    def _dump(self, key: str, decision: _Decision) -> str:
        if decision.user is None:
            return json.dumps({"error": decision.error})
        value: dict[str, Any] = {"user": decision.user}
        if decision.access_token is not None and decision.expires_at is not None:
            access = Credentials(
                access_token=SecretStr(decision.access_token),
                expires_at=datetime.fromtimestamp(decision.expires_at, UTC),
            )
            value["access"] = self._sealer.seal(access, context=key)
        return json.dumps(value)

    async def _read(self, key: str) -> _Decision | None:
        raw = await self._redis.get(key)
        if raw is None:
            return None
        value = json.loads(raw)
        if value.get("user") is None or "access" not in value:
            return _Decision(user=value.get("user"), error=value.get("error"))
        try:
            access = self._sealer.open(value["access"], context=key)
        except SealError:  # sealed with another PERSAI_SECRET_KEY: ask Perses again
            return None
        return _Decision(
            user=value["user"],
            access_token=access.access_token.get_secret_value(),
            expires_at=access.expires_at.timestamp(),
        )

    # Asking Perses (`PersesAuth`): a refusal is a verdict, cached like an acceptance ----------

    async def _ask_refresh(self, refresh_token: str) -> _Decision:
        try:
            refreshed = await self._perses.refresh(refresh_token)
        except Unauthenticated as refused:
            return _Decision(error=refused.message)
        try:
            claims = parse_token(refreshed.access_token, what="access token Perses returned")
        except Unauthenticated as exc:
            raise UpstreamError("Perses answered the token refresh with something odd") from exc
        returned = refreshed.access_token
        return _Decision(user=claims.subject, access_token=returned, expires_at=claims.expires_at)

    async def _ask_whoami(self, access_token: str, subject: str) -> _Decision:
        try:
            confirmed = await self._perses.whoami(access_token)
        except Unauthenticated as refused:
            return _Decision(error=refused.message)
        return _confirm(confirmed, subject)


def _verdict(decision: _Decision) -> Verdict:
    assert decision.user is not None
    assert decision.access_token is not None
    assert decision.expires_at is not None
    return Verdict(
        user=decision.user,
        access_token=SecretStr(decision.access_token),
        expires_at=datetime.fromtimestamp(decision.expires_at, UTC),
    )


def _confirm(confirmed: str, claimed: str) -> _Decision:
    if confirmed != claimed:
        logger.warning("refused a token whose payload names another user than Perses confirmed")
        return _Decision(error="the access token names another user than Perses confirmed")
    return _Decision(user=confirmed)
