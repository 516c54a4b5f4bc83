"""Who is calling: the one place the API gets identity from.

A caller is either a browser with the three Perses cookies (`jwtPayload`, `jwtSignature`,
`jwtRefreshToken`) or a client with `Authorization: Bearer <Perses access token>`. Either way
Perses confirms the identity (see `token_validator`); with `PERSAI_AUTH=false` every caller is
the same anonymous user and nothing is forwarded.

Cookies go with every request a browser sends, whichever site made it: an unsafe request
(anything but GET, HEAD, OPTIONS) is taken only from a page PersAI trusts (see `check_origin`).
"""

from __future__ import annotations

import logging
from datetime import UTC
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr
from starlette.requests import Request

from persai.config import Settings
from persai.credentials import Credentials
from persai.errors import Forbidden, InvalidRequest, Unauthenticated
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
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
"""Sec-Fetch-Site values of a request the page itself made (or the user, "none")."""


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
            raise ValueError(
                "authentication is on (PERSAI_AUTH) but no TokenValidator was given: set "
                "PERSES_API_URL to the Perses whose users may call PersAI, or PERSAI_AUTH=false"
            )
        self._enabled = settings.auth
        self._validator = validator
        self._origins = frozenset(origin.lower() for origin in settings.allowed_origins())

    async def authenticate(self, request: Request) -> Principal:
        self.check_origin(request)
        if not self._enabled or self._validator is None:
            return ANONYMOUS
        authorization = request.headers.get("authorization")
        if authorization is not None:
            return await self._bearer(self._validator, authorization)
        return await self._cookies(self._validator, request)

    def check_origin(self, request: Request) -> None:
        """Refuse an unsafe request that a page PersAI does not trust made (CSRF).

        Browsers send `Origin` with every POST, PUT, PATCH and DELETE: it must be one of the
        CORS origins (PERSAI_CORS_ORIGINS, else the Perses origin) or PersAI's own (its Host,
        e.g. the /docs page). A request without `Origin` that carries the Perses cookies comes
        from an old browser or from a script: a browser's `Sec-Fetch-Site` must then say
        same-origin, else its `Referer` must be a trusted page; with neither it is a script,
        which no web page can make send the user's cookies. Without cookies (a bearer token, or
        authentication off) and without `Origin`, nothing is checked.
        """
        if request.method in _SAFE_METHODS:
            return
        origin = request.headers.get("origin")
        if origin is None and any(name in request.cookies for name in _COOKIES):
            fetch_site = request.headers.get("sec-fetch-site")
            if fetch_site is not None:
                if fetch_site.lower() not in _SAME_SITE_FETCHES:
                    raise Forbidden(
                        f"cross-site request refused (Sec-Fetch-Site: {fetch_site[:20]}); "
                        "send it from Perses or an origin in PERSAI_CORS_ORIGINS"
                    )
                return
            origin = _origin_of(request.headers.get("referer"))
        if origin is not None and not self._trusted(origin, request):
            raise Forbidden(
                f"cross-site request refused: origin {origin[:100]!r} is not allowed; "
                "PERSAI_CORS_ORIGINS lists the origins that may send it"
            )

    def _trusted(self, origin: str, request: Request) -> bool:
        """A CORS origin, or PersAI's own (the host the request was sent to)."""
        if origin.lower() in self._origins:
            return True
        host = request.headers.get("host", "").lower()
        return bool(host) and _netloc(origin) == host

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


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ""


def _origin_of(referer: str | None) -> str | None:
    """The origin (scheme://host[:port]) of a Referer, or None when there is none."""
    if not referer:
        return None
    try:
        parts = urlsplit(referer)
    except ValueError:
        return "invalid Referer"
    return f"{parts.scheme}://{parts.netloc}"


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
