"""Who is calling: the one place the API gets identity from.

A caller is either a browser with the three Perses cookies (`jwtPayload`, `jwtSignature`,
`jwtRefreshToken`) or a client with `Authorization: Bearer <Perses access token>`. Either way
Perses confirms the identity (see `token_validator`); with `PERSAI_AUTH=false` every caller is
the same anonymous user and nothing is forwarded.
"""

from __future__ import annotations

import logging
from datetime import UTC

from pydantic import BaseModel, ConfigDict, SecretStr
from starlette.requests import Request

from persai.config import Settings
from persai.credentials import Credentials
from persai.errors import InvalidRequest, Unauthenticated
from persai.server.token_validator import MAX_TOKEN_BYTES, TokenValidator

__all__ = [
    "ANONYMOUS",
    "COOKIE_PAYLOAD",
    "COOKIE_REFRESH",
    "COOKIE_SIGNATURE",
    "Authenticator",
    "Principal",
]

logger = logging.getLogger(__name__)

COOKIE_PAYLOAD = "jwtPayload"
COOKIE_SIGNATURE = "jwtSignature"
COOKIE_REFRESH = "jwtRefreshToken"
_COOKIES = (COOKIE_PAYLOAD, COOKIE_SIGNATURE, COOKIE_REFRESH)


class Principal(BaseModel):
    """The caller as Perses confirmed them, and the credentials the worker forwards for them."""

    model_config = ConfigDict(frozen=True)

    user: str
    credentials: Credentials | None = None
    """None when authentication is off: nothing is forwarded to Perses."""


ANONYMOUS = Principal(user="anonymous", credentials=None)


class Authenticator:
    """Turns a request into a Principal, or raises Unauthenticated / InvalidRequest."""

    def __init__(self, settings: Settings, validator: TokenValidator | None) -> None:
        if settings.auth and validator is None:
            raise ValueError("authentication is on (PERSAI_AUTH) but no TokenValidator was given")
        self._enabled = settings.auth
        self._validator = validator

    async def authenticate(self, request: Request) -> Principal:
        if not self._enabled or self._validator is None:
            return ANONYMOUS
        authorization = request.headers.get("authorization")
        if authorization is not None:
            return await self._bearer(self._validator, authorization)
        return await self._cookies(self._validator, request)

    @staticmethod
    async def _bearer(validator: TokenValidator, authorization: str) -> Principal:
        _check_size("the Authorization header", authorization)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must be 'Bearer <Perses access token>'")
        verdict = await validator.validate_bearer(token)
        credentials = Credentials(access_token=verdict.access_token, expires_at=verdict.expires_at)
        return Principal(user=verdict.user, credentials=credentials)

    @staticmethod
    async def _cookies(validator: TokenValidator, request: Request) -> Principal:
        present = {name: request.cookies.get(name, "") for name in _COOKIES}
        for name, value in present.items():
            _check_size(f"the {name} cookie", value)
        missing = [name for name, value in present.items() if not value]
        if len(missing) == len(_COOKIES):
            raise Unauthenticated(
                "not signed in: send the Perses cookies or 'Authorization: Bearer <token>'"
            )
        if missing:
            raise Unauthenticated(
                f"incomplete Perses session: missing cookie(s) {', '.join(missing)}"
            )
        access_token = _join(present[COOKIE_PAYLOAD], present[COOKIE_SIGNATURE])
        refresh_token = present[COOKIE_REFRESH]
        verdict = await validator.validate_cookie(access_token, refresh_token)
        credentials = Credentials(  # the access token Perses returned, not the client's
            access_token=verdict.access_token,
            refresh_token=SecretStr(refresh_token),
            expires_at=verdict.expires_at.astimezone(UTC),
        )
        logger.debug("authenticated %s by Perses cookies", verdict.user)
        return Principal(user=verdict.user, credentials=credentials)


def _check_size(what: str, value: str) -> None:
    if len(value.encode()) > MAX_TOKEN_BYTES:
        raise InvalidRequest(f"{what} is larger than {MAX_TOKEN_BYTES // 1024} KiB")


def _join(payload_cookie: str, signature_cookie: str) -> str:
    """The access token from its two cookies: `header.payload` and the signature."""
    if payload_cookie.count(".") != 1:
        parts = payload_cookie.count(".") + 1
        raise Unauthenticated(
            f"the {COOKIE_PAYLOAD} cookie must be header.payload, not {parts} parts"
        )
    if "." in signature_cookie:
        raise Unauthenticated(f"the {COOKIE_SIGNATURE} cookie must be a single signature part")
    return f"{payload_cookie}.{signature_cookie}"
