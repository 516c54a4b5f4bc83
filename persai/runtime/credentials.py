"""The user's forwarded credentials, as the worker uses them: opened from the job, refreshed,
re-sealed. This is where the identity the API confirmed turns into tokens sent to Perses."""

from __future__ import annotations

import logging

import httpx

from persai.agent.tools import TokenSource
from persai.config import Settings
from persai.credentials import Credentials, PersesTokens, Sealer
from persai.errors import Unauthenticated
from persai.jobs import JobStore

log = logging.getLogger(__name__)


class CredentialsSource:
    """Bearer tokens for a job's calls to Perses, from the sealed credentials in its record."""

    def __init__(self, settings: Settings, store: JobStore, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._store = store
        self._http = http
        self._sealer = Sealer(settings.secret_key) if settings.secret_key else None

    def seal(self, credentials: Credentials, job_id: str) -> str:
        if self._sealer is None:
            raise RuntimeError("PERSAI_SECRET_KEY is needed to forward credentials")
        return self._sealer.seal(credentials, context=job_id)

    async def tokens_for(self, job_id: str) -> TokenSource | None:
        """The job's token source; None when PersAI forwards nothing (authentication off)."""
        if not self._settings.auth:
            return None
        sealed = await self._store.credentials(job_id)
        if sealed is None or self._sealer is None or self._settings.perses_api_url is None:
            raise Unauthenticated(
                "the user's credentials for this investigation expired or are missing; "
                "ask the question again"
            )
        credentials = self._sealer.open(sealed, context=job_id)
        ttl_s = self._settings.credentials_ttl_s

        async def keep(refreshed: Credentials) -> None:
            # sealed again only while the job is unfinished: a refresh that ends after the job
            # must not bring back the credentials its end deleted (for another TTL)
            if not await self._store.store_credentials(job_id, self.seal(refreshed, job_id), ttl_s):
                log.info("job %s ended meanwhile; its refreshed credentials are not kept", job_id)

        tokens = PersesTokens(
            credentials, self._http, str(self._settings.perses_api_url), on_refresh=keep
        )
        return tokens
