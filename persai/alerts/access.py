"""Who may read an alert investigation: whoever may read its datasource in Perses (asked with
their own token, the verdict cached), and the users the operator lists.

Perses is asked what the Perses UI asks: the datasource list of the project (or the global
list), or the dashboard, for a dashboard's own datasource. Perses answers 403 to a user
without read permission (`internal/api/authorization/native/native.go`), and lists only
datasources that exist (`internal/api/impl/v1/datasource`, `globaldatasource`).
"""

from __future__ import annotations

import hashlib
import logging

import httpx
import redis.asyncio as aioredis

from persai.alerts.receivers import AlertsConfig
from persai.credentials import Credentials
from persai.datasources import parse_datasource
from persai.errors import PersesUnavailable
from persai.jobs import Job, keys, redis_errors

log = logging.getLogger(__name__)

CACHE_TTL_S = 300
"""A verdict is kept five minutes (permissions change more often than tokens)."""


class ReadAccess:
    def __init__(
        self,
        config: AlertsConfig,
        readers: list[str],
        redis: aioredis.Redis,
        http: httpx.AsyncClient,
        perses_url: str | None,
        api_prefix: str = "",
    ) -> None:
        self._config = config
        self._readers = set(readers)
        self._redis = redis
        self._http = http
        self._perses = perses_url.rstrip("/") if perses_url else None
        self._prefix = api_prefix

    async def may_read(self, user: str, credentials: Credentials | None, job: Job) -> bool:
        """Whether `user` (with their `credentials`; None: authentication is off) may read
        the alert investigation `job`."""
        if job.source != "alert" or job.alert is None:
            return False
        receiver = self._config.receiver(job.alert.receiver)
        if user in self._readers or (receiver is not None and user in receiver.readers):
            return True
        if self._perses is None:
            return credentials is None  # no Perses, no permissions to ask: everyone reads
        if credentials is None:
            return False
        key = (
            f"{keys.PREFIX}:alert:access:"
            + hashlib.sha256(f"{user}\0{job.datasource}".encode()).hexdigest()
        )
        async with redis_errors():
            cached = await self._redis.get(key)
        if cached is not None:
            return cached == "1"
        verdict = await self._ask(credentials, job.datasource)
        async with redis_errors():
            await self._redis.set(key, "1" if verdict else "0", ex=CACHE_TTL_S)
        return verdict

    async def _ask(self, credentials: Credentials, datasource: str) -> bool:
        path = parse_datasource(datasource, self._prefix)
        if path.dashboard is not None:
            url, wanted = f"/api/v1/projects/{path.project}/dashboards/{path.dashboard}", None
        elif path.project is not None:
            url, wanted = f"/api/v1/projects/{path.project}/datasources", path.name
        else:
            url, wanted = "/api/v1/globaldatasources", path.name
        bearer = {"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"}
        try:
            response = await self._http.get(f"{self._perses}{url}", headers=bearer)
        except httpx.HTTPError as exc:
            raise PersesUnavailable(f"Perses cannot be reached ({type(exc).__name__})") from exc
        if response.status_code in (401, 403, 404):
            return False
        if response.status_code != 200:
            raise PersesUnavailable(f"Perses answered HTTP {response.status_code}")
        if wanted is None:
            return True
        try:
            listed = response.json()
            return any(item.get("metadata", {}).get("name") == wanted for item in listed)
        except (ValueError, AttributeError, TypeError):
            log.warning("Perses answered its datasource list unlike Perses")
            return False
