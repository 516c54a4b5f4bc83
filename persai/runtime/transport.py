"""httpx's interface over aiohttp's connections, for the requests a worker's tools make.

A worker calls Prometheus for hundreds of investigations at once, on one event loop. httpx's own
transport (httpcore) spends several times the CPU of aiohttp on each request, and more with
every connection its pool holds; the tools keep httpx's API (and its tests their mock
transports) and the worker sends through aiohttp. Nothing is kept between requests but the
connections: no cookies (Perses prefers them to the bearer token of the user at hand), no
redirects followed, no body decoded (httpx decodes `Content-Encoding` itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, keepalive_s: float = 30.0) -> None:
        """`max_connections` in all, kept alive `keepalive_s` seconds when idle."""
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # made on first use: a session belongs to the event loop it was made in
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_s,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            response = await self._client().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=CIMultiDict(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
                ),
            )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except TimeoutError as exc:  # waiting for the status line
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Body(httpx.AsyncByteStream):
    """A response body read as it arrives; closing it hands the connection back."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=self._request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc), request=self._request) from exc

    async def aclose(self) -> None:
        self._response.release()
