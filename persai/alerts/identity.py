"""The Perses user PersAI signs in as for a receiver's alerts: native login, then refresh.

Perses 0.54 (`internal/api/impl/auth/native.go`, `auth.go`): `POST /api/auth/providers/native/
login` with `{"login", "password"}` answers the access and refresh tokens (400 for a wrong
login or password); `POST /api/auth/refresh` with `{"refresh_token"}` answers a new access
token. The tokens are cached in Redis sealed (as users' tokens are, `persai.credentials`), so
the API replicas sign in once per refresh token's lifetime, not once per alert.
"""

from __future__ import annotations

import logging

import httpx
import redis.asyncio as aioredis

from persai.alerts.receivers import Identity
from persai.credentials import Credentials, PersesTokens, Sealer, SealError
from persai.errors import PersAIError, PersesUnavailable, ServiceUnavailable
from persai.jobs import keys, redis_errors

log = logging.getLogger(__name__)

MIN_LEFT_S = 60.0
"""A cached access token with less left than this is refreshed before a job gets it."""


def _key(receiver: str) -> str:
    return f"{keys.PREFIX}:alert:identity:{receiver}"


class ServiceIdentities:
    def __init__(
        self, redis: aioredis.Redis, http: httpx.AsyncClient, perses_url: str, sealer: Sealer
    ) -> None:
        self._redis = redis
        self._http = http
        self._base = perses_url.rstrip("/")
        self._sealer = sealer

    async def credentials(self, receiver: str, identity: Identity) -> Credentials:
        """Fresh credentials of the receiver's service user (503 when Perses refuses them)."""
        context = f"alert-identity:{receiver}"
        async with redis_errors():
            sealed = await self._redis.get(_key(receiver))
        cached = None
        if sealed is not None:
            try:
                cached = self._sealer.open(str(sealed), context=context)
            except SealError:
                log.warning("the cached service identity of receiver %s is unreadable", receiver)
        if cached is not None and cached.seconds_left() > MIN_LEFT_S:
            return cached
        fresh = await self._refreshed(cached) if cached is not None else None
        if fresh is None:
            fresh = await self._login(receiver, identity)
        ttl_s = max(60, int(fresh.seconds_left()) * 4)
        async with redis_errors():
            await self._redis.set(
                _key(receiver), self._sealer.seal(fresh, context=context), ex=ttl_s
            )
        return fresh

    async def _refreshed(self, cached: Credentials) -> Credentials | None:
        if cached.refresh_token is None:
            return None
        tokens = PersesTokens(cached, self._http, self._base)
        try:
            await tokens.refresh()
        except PersesUnavailable:
            raise
        except PersAIError:
            return None  # the refresh token expired: sign in again
        return tokens.credentials

    async def _login(self, receiver: str, identity: Identity) -> Credentials:
        assert identity.password is not None  # read with the configuration
        body = {"login": identity.login, "password": identity.password.get_secret_value()}
        try:
            response = await self._http.post(
                f"{self._base}/api/auth/providers/native/login", json=body
            )
        except httpx.HTTPError as exc:
            raise PersesUnavailable(f"Perses cannot be reached ({type(exc).__name__})") from exc
        if response.status_code != 200:
            log.warning(
                "Perses refused the sign-in of receiver %s's service user (HTTP %d)",
                receiver,
                response.status_code,
            )
            raise ServiceUnavailable(
                f"the service user of receiver {receiver!r} cannot sign in to Perses; check its "
                "identity in PERSAI_ALERTS_CONFIG",
                retry_after_s=60,
            )
        try:
            data = response.json()
            return Credentials.from_tokens(data["access_token"], data.get("refresh_token"))
        except (ValueError, KeyError, TypeError) as exc:
            raise PersesUnavailable("Perses answered its native login unlike Perses") from exc
