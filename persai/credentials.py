"""A user's Perses tokens: what the API forwards to the worker, sealed at rest, kept fresh.

`Credentials` holds the tokens, `Sealer` encrypts them for Redis (AES-256-GCM under a key derived
from `PERSAI_SECRET_KEY` with HKDF), and `PersesTokens` hands the worker a valid access token,
refreshing it through Perses shortly before it expires.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http.cookiejar
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import AwareDatetime, BaseModel, SecretStr, ValidationError, field_validator

from persai.errors import SealError, Unauthenticated, UpstreamError
from persai.perses_client import PersesAuth
from persai.tokens import token_claims

__all__ = ["Credentials", "PersesTokens", "SealError", "Sealer", "cookieless_jar", "token_claims"]

logger = logging.getLogger(__name__)

_SEAL_VERSION = "v1"
_NONCE_BYTES = 12  # AES-GCM's standard nonce size
_HKDF_INFO = b"persai credentials v1"


def cookieless_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps nothing, for every httpx client that talks to Perses.

    Perses sets the session cookies on login and refresh, and prefers cookies to the
    `Authorization` header: a shared client that kept them would act as that user for everyone.
    Use `httpx.AsyncClient(cookies=cookieless_jar())`.
    """
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class Credentials(BaseModel):
    """A user's Perses tokens, as forwarded to the worker. Never logged, never stored in clear."""

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_at: AwareDatetime
    """When the access token expires (UTC)."""

    @field_validator("expires_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def from_tokens(cls, access_token: str, refresh_token: str | None = None) -> Credentials:
        """Credentials whose expiry is read from the access token's `exp` claim."""
        exp = token_claims(access_token).get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise ValueError("the access token has no numeric exp claim")
        return cls(
            access_token=SecretStr(access_token),
            refresh_token=SecretStr(refresh_token) if refresh_token else None,
            expires_at=datetime.fromtimestamp(exp, UTC),
        )

    def seconds_left(self, now: float | None = None) -> float:
        """Seconds until the access token expires (negative once it has)."""
        return self.expires_at.timestamp() - (time.time() if now is None else now)


class Sealer:
    """Authenticated encryption of Credentials with a key derived from PERSAI_SECRET_KEY.

    A sealed value is `v1.<base64url(nonce | ciphertext | tag)>`. `context` (e.g. the job id) is
    bound in as associated data, so a sealed value only opens for the context it was sealed for.
    """

    def __init__(self, secret_key: SecretStr | str) -> None:
        secret = secret_key.get_secret_value() if isinstance(secret_key, SecretStr) else secret_key
        if not secret:
            raise ValueError("a secret key is needed to seal credentials (PERSAI_SECRET_KEY)")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
        self._aead = AESGCM(hkdf.derive(secret.encode()))

    def seal(self, credentials: Credentials, *, context: str = "") -> str:
        plain = json.dumps(
            {
                "access_token": credentials.access_token.get_secret_value(),
                "refresh_token": (
                    credentials.refresh_token.get_secret_value()
                    if credentials.refresh_token
                    else None
                ),
                "expires_at": credentials.expires_at.isoformat(),
            }
        ).encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain, context.encode())
        return f"{_SEAL_VERSION}.{base64.urlsafe_b64encode(sealed).decode()}"

    def open(self, sealed: str, *, context: str = "") -> Credentials:
        """The credentials sealed in `sealed`; SealError if it was altered or the key differs."""
        version, _, body = sealed.partition(".")
        if version != _SEAL_VERSION:
            raise SealError("sealed credentials are in an unknown format")
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            plain = self._aead.decrypt(nonce, ciphertext, context.encode())
            return Credentials.model_validate_json(plain)
        except (binascii.Error, ValueError, InvalidTag, ValidationError) as exc:
            raise SealError(
                "sealed credentials could not be opened: altered, or sealed with another key"
            ) from exc


OnRefresh = Callable[[Credentials], Awaitable[None]]


class PersesTokens:
    """A valid Perses access token for the worker, refreshed shortly before it expires.

    The refresh margin is `margin_s`, or a fifth of the token's lifetime for short-lived tokens.
    Concurrent callers share one refresh; `on_refresh` receives the new credentials (to re-seal
    them) before any caller gets the new token.
    """

    def __init__(
        self,
        credentials: Credentials,
        http: httpx.AsyncClient,
        perses_api_url: str,
        *,
        on_refresh: OnRefresh | None = None,
        margin_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._perses = PersesAuth(http, perses_api_url)
        self._on_refresh = on_refresh
        self._margin_s = margin_s
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def credentials(self) -> Credentials:
        return self._credentials

    async def bearer(self) -> str:
        """An access token valid for at least the refresh margin, refreshing it if needed."""
        if not self._needs_refresh():
            return self._credentials.access_token.get_secret_value()
        async with self._lock:
            if self._needs_refresh():  # another caller may have refreshed while we waited
                await self._refresh()
        return self._credentials.access_token.get_secret_value()

    async def refresh(self) -> str:
        """Refresh now (e.g. Perses answered 401 to the current token); the new access token."""
        stale = self._credentials
        async with self._lock:
            if self._credentials is stale:
                await self._refresh()
        return self._credentials.access_token.get_secret_value()

    def _margin(self) -> float:
        try:
            claims = token_claims(self._credentials.access_token.get_secret_value())
            issued = claims["nbf"] if "nbf" in claims else claims["iat"]
            lifetime = float(claims["exp"]) - float(issued)
        except (ValueError, KeyError, TypeError):
            return self._margin_s
        return min(self._margin_s, lifetime / 5)

    def _needs_refresh(self) -> bool:
        return self._credentials.seconds_left(self._clock()) <= self._margin()

    async def _refresh(self) -> None:
        refresh_token = self._credentials.refresh_token
        if refresh_token is None:
            if self._credentials.seconds_left(self._clock()) > 0:
                return  # nothing to refresh with; the token is still good for a little while
            raise Unauthenticated(
                "the Perses access token expired and there is no refresh token to renew it "
                "(a bearer client): ask again with a fresh token, or from Perses itself"
            )
        refreshed = await self._perses.refresh(refresh_token.get_secret_value())
        try:
            self._credentials = Credentials.from_tokens(
                refreshed.access_token,
                refreshed.refresh_token or refresh_token.get_secret_value(),
            )
        except ValueError as exc:
            raise UpstreamError(
                f"Perses answered a token refresh wrongly ({type(exc).__name__})"
            ) from exc
        logger.info(
            "refreshed a Perses access token (valid until %s)", self._credentials.expires_at
        )
        if self._on_refresh is not None:
            await self._on_refresh(self._credentials)
