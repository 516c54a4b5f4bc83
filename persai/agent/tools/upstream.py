"""HTTP to the APIs tools read (Prometheus through the Perses proxy, Perses itself), as the user.

Every failure becomes a ToolError the model can act on; the bytes read from upstream are capped.
Requests go through one aiohttp session per worker process: hundreds of investigations call
their tools on one event loop, and aiohttp spends a fraction of the CPU per request of the
alternatives measured (`bench/README.md`). The session keeps no cookies (Perses prefers them to
the bearer token of the user at hand) and follows no redirects.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Protocol

import aiohttp
import orjson

from persai import metrics
from persai.agent.tools.base import ToolError

log = logging.getLogger(__name__)


class UpstreamStatusError(ToolError):
    """An upstream answered with an error: its HTTP `status` and, for Prometheus, `error_type`
    (`bad_data`, `timeout`, `execution`, …), for tools that word the error their own way."""

    def __init__(self, message: str, *, status: int, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class EndpointNotAllowed(UpstreamStatusError):
    """Perses's proxy refused the endpoint itself: the datasource lists the endpoints (pattern
    and method) it may be used for, and this one is not among them."""


# The message of Perses's proxy for a request outside the datasource's `allowedEndpoints`
# (perses internal/api/impl/proxy/proxy.go, httpProxy.serve): "you are not allowed to use this
# endpoint %q with the HTTP method %s", after "forbidden access: "
# (internal/api/interface/error.go), answered as {"message": ...}.
_NOT_ALLOWED = "you are not allowed to use this endpoint"


def _refused_endpoint(document: Any) -> bool:
    message = document.get("message") if isinstance(document, dict) else None
    return isinstance(message, str) and _NOT_ALLOWED in message


class TokenSource(Protocol):
    """The user's access token for Perses, and a way to renew it when Perses refuses it."""

    async def bearer(self) -> str: ...
    async def refresh(self) -> str: ...


class UpstreamSlots:
    """How many requests one process may have in flight to each upstream (base URL) at once.

    Hundreds of investigations on one worker tend to call their tools in the same instant. A
    bound keeps Prometheus from a burst it would only queue (its own default is 20 concurrent
    queries) and keeps the HTTP client's connection pool small, whose bookkeeping grows with
    every connection it holds.
    """

    def __init__(self, per_upstream: int) -> None:
        self._per_upstream = per_upstream
        self._slots: dict[str, asyncio.Semaphore] = {}

    def slot(self, base_url: str) -> asyncio.Semaphore:
        key = base_url.rstrip("/")
        if (slot := self._slots.get(key)) is None:
            slot = self._slots[key] = asyncio.Semaphore(self._per_upstream)
        return slot


class UpstreamAPI:
    """A JSON HTTP API under one base URL, called with the user's bearer token when given."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        label: str,
        tokens: TokenSource | None = None,
        max_bytes: int,
        slots: UpstreamSlots | None = None,
    ) -> None:
        """`slots` bounds the requests in flight to `base_url` (none: unbounded)."""
        self._session = session
        self._base_url = base_url.rstrip("/")
        self.label = label
        self._tokens = tokens
        self._max_bytes = max_bytes
        self._slot: AbstractAsyncContextManager[Any] = (
            slots.slot(self._base_url) if slots is not None else nullcontext()
        )

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET base_url + path with `params` in the query string; the decoded JSON body, or a
        ToolError saying what went wrong.

        A token Perses refuses (401) is refreshed once and the request tried again.
        """
        return await self._call("GET", path, params)

    async def post_form(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """POST base_url + path with `params` form-encoded in the body, as Prometheus accepts
        for queries, series and labels (and as a datasource configured in the Perses UI
        requires); otherwise as `get`."""
        return await self._call("POST", path, params)

    async def _call(self, method: str, path: str, params: dict[str, Any] | None) -> Any:
        status, body = await self._send(method, path, params, refresh=False)
        if status == 401 and self._tokens is not None:
            status, body = await self._send(method, path, params, refresh=True)
        return self._decode(method, path, status, body)

    async def _send(
        self, method: str, path: str, params: dict[str, Any] | None, *, refresh: bool
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if self._tokens is not None:
            token = await (self._tokens.refresh() if refresh else self._tokens.bearer())
            headers["Authorization"] = f"Bearer {token}"
        pairs = _query(params)
        try:
            async with (
                self._slot,
                self._session.request(
                    method,
                    self._base_url + path,
                    params=pairs if method == "GET" else None,
                    data=pairs if method != "GET" else None,  # form-encoded
                    headers=headers,
                    allow_redirects=False,
                ) as response,
            ):
                body = await self._read_capped(response)
        except TimeoutError as exc:
            raise ToolError(f"{self.label} did not answer in time; narrow the query") from exc
        except aiohttp.ClientError as exc:
            raise ToolError(f"{self.label} is unreachable: {type(exc).__name__}") from exc
        if self._tokens is not None:
            metrics.PERSES_REQUESTS.labels("proxy", str(response.status)).inc()
        return response.status, body

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        chunks, size = [], 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > self._max_bytes:
                raise ToolError(
                    f"the answer of {self.label} is larger than {self._max_bytes // 1_000_000} MB; "
                    "ask for less: topk(), sum by (...), narrower label matchers or a coarser step"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, method: str, path: str, status: int, body: bytes) -> Any:
        try:  # orjson: a range query's answer decodes about 6x faster than with json
            document = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            document = None
        if status == 403 and _refused_endpoint(document):
            raise EndpointNotAllowed(
                f"the Perses configuration of datasource {self.label} does not allow "
                f"{method} {path} (its proxy's allowedEndpoints); this is not a permission "
                "problem, and another datasource will not change it",
                status=status,
            )
        if status == 401:
            raise UpstreamStatusError(
                f"Perses did not accept the user's token for {self.label} (HTTP 401); the user "
                "may need to sign in again",
                status=status,
            )
        if status == 403:
            raise UpstreamStatusError(
                f"no permission on datasource {self.label} (HTTP 403): the user may not "
                "read it; try another datasource",
                status=status,
            )
        if status == 404:
            raise UpstreamStatusError(
                f"{self.label} has no such endpoint or resource (HTTP 404)", status=status
            )
        if isinstance(document, dict) and document.get("status") == "error":
            kind = document.get("errorType", "error")
            raise UpstreamStatusError(
                f"Prometheus rejected the request ({kind}): {document.get('error')}",
                status=status,
                error_type=str(kind),
            )
        if status >= 400 or document is None:
            snippet = body[:300].decode("utf-8", "replace")
            raise UpstreamStatusError(
                f"{self.label} answered HTTP {status}: {snippet}", status=status
            )
        return document


def _query(params: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Query parameters as pairs: a list gives the name once per item (`match[]`), True/False
    are written `true`/`false`, None is left empty."""
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((name, _text(item)))
    return pairs


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
