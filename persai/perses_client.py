"""Perses's authentication API as PersAI calls it: refreshing a session, asking who a token is.

The one place where PersAI asks Perses about tokens, for the API (`token_validator`: is this
caller who they say?) and for the workers (`credentials.PersesTokens`: a fresh access token for
a job). Each answer maps to PersAI's errors here, the same for both:

- Perses unreachable, or answering 5xx           -> PersesUnavailable (503, with Retry-After)
- Perses refusing the token (400, 401)            -> Unauthenticated (401)
- no refresh route (404, 405: Kubernetes authentication) -> Unauthenticated, saying what to send
- no whoami (404, 405: Perses older than 0.53), or an answer that is not what Perses sends
                                                  -> UpstreamError (502)

Routes: `POST /api/auth/refresh` {"refresh_token"} -> {"access_token", "refresh_token"?}
(perses internal/api/impl/auth/auth.go, `refresh`), and `GET /api/v1/user/whoami` -> a User
whose `metadata.name` is the caller (internal/api/impl/v1/user/endpoint.go, `WhoAmI`, since
Perses 0.53).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from persai import metrics
from persai.errors import PersesUnavailable, Unauthenticated, UpstreamError

__all__ = ["MIN_PERSES_VERSION", "PersesAuth", "Refreshed"]

MIN_PERSES_VERSION = "0.54"
"""The oldest Perses PersAI supports: whoami appeared in 0.53, and 0.54 fixed a hole in the
datasource proxy's authorization."""
RETRY_AFTER_S = 5
"""What a 503 tells the client to wait while Perses is down (s)."""
REFRESH = "/api/auth/refresh"
WHOAMI = "/api/v1/user/whoami"


@dataclass(frozen=True)
class Refreshed:
    """What Perses answered a refresh with: a new access token, and a new refresh token when
    it rotated it (None: keep the one that was sent)."""

    access_token: str
    refresh_token: str | None


class PersesAuth:
    """The authentication routes of the Perses at `perses_api_url` (see the module)."""

    def __init__(self, http: httpx.AsyncClient, perses_api_url: str) -> None:
        self._http = http
        self._perses = str(perses_api_url).rstrip("/")

    async def refresh(self, refresh_token: str) -> Refreshed:
        """A new access token for the session of `refresh_token`."""
        response = await self._send("POST", REFRESH, json={"refresh_token": refresh_token})
        if response.status_code in (400, 401):
            raise Unauthenticated("Perses did not accept the refresh token: sign in again")
        if response.status_code in (404, 405):
            # Perses with Kubernetes (delegated) authentication registers no refresh route
            raise Unauthenticated(
                "Perses has no token refresh here (Kubernetes authentication): send "
                "'Authorization: Bearer <token>' instead of the Perses cookies"
            )
        try:
            body = _ok_json(response)
            access_token = body["access_token"]
            rotated = body.get("refresh_token")
            if not isinstance(access_token, str) or not isinstance(rotated, str | None):
                raise TypeError("a token that is not a string")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamError(
                f"Perses answered the token refresh with something odd ({type(exc).__name__})"
            ) from exc
        return Refreshed(access_token, rotated or None)

    async def whoami(self, access_token: str) -> str:
        """The name of the user whose access token this is."""
        headers = {"Authorization": f"Bearer {access_token}"}
        response = await self._send("GET", WHOAMI, headers=headers)
        if response.status_code in (400, 401):
            raise Unauthenticated("Perses did not accept the access token")
        if response.status_code in (404, 405):  # the route appeared in Perses 0.53
            raise UpstreamError(
                f"Perses has no {WHOAMI} to check bearer tokens with: it is older "
                f"than PersAI supports (Perses {MIN_PERSES_VERSION} or newer)"
            )
        try:
            confirmed = _ok_json(response)["metadata"]["name"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError("Perses answered whoami with something odd") from exc
        if not isinstance(confirmed, str) or not confirmed:
            raise UpstreamError("Perses answered whoami without a user name")
        return confirmed

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = self._http.build_request(method, f"{self._perses}{path}", **kwargs)
        # Perses prefers cookies to the Authorization header and the refresh cookie to the
        # body: a cookie the shared client kept from another user's answer must never go out.
        request.headers.pop("cookie", None)
        try:
            response = await self._http.send(request)
        except httpx.HTTPError as exc:
            metrics.PERSES_REQUESTS.labels(path, "unreachable").inc()
            raise PersesUnavailable(
                f"Perses cannot be reached ({type(exc).__name__})", retry_after_s=RETRY_AFTER_S
            ) from exc
        metrics.PERSES_REQUESTS.labels(path, str(response.status_code)).inc()
        if response.status_code >= 500:
            raise PersesUnavailable(
                f"Perses answered HTTP {response.status_code}", retry_after_s=RETRY_AFTER_S
            )
        return response


def _ok_json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}")
    return response.json()
