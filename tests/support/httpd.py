"""A real HTTP server on a free loopback port whose answers a test writes as a function of
httpx.Request -> httpx.Response, and the aiohttp session the tools would call it with.

    async with serve(handler) as (base_url, session):
        api = UpstreamAPI(session, base_url + "/prom", label="prom", max_bytes=1_000_000)
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import httpx
from aiohttp import web

from persai.launcher import free_port

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def tools_session(read_timeout_s: float = 10) -> aiohttp.ClientSession:
    """A session like the worker's: no cookies kept, short timeouts."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(sock_connect=5, sock_read=read_timeout_s),
    )


@asynccontextmanager
async def serve(
    handler: Handler, *, read_timeout_s: float = 10
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """`handler` may be a coroutine function (a slow upstream sleeps in it)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        asked = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.items()),
            content=await request.read(),
        )
        reply = handler(asked)
        if inspect.isawaitable(reply):
            reply = await reply
        headers = {k: v for k, v in reply.headers.items() if k.lower() == "content-type"}
        return web.Response(status=reply.status_code, body=reply.content, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with tools_session(read_timeout_s) as session:
            yield f"http://127.0.0.1:{port}", session
    finally:
        await runner.cleanup()
