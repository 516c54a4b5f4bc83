"""Calling tools in unit tests: Prometheus (behind the Perses proxy) and Perses answered by one
local HTTP server whose routes the test writes, a ToolContext on real UpstreamAPI clients, the
Toolbox parsing JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from persai.agent.results import estimate_tokens
from persai.agent.tools import ALL_TOOLS, Toolbox, ToolContext, ToolError, ToolOutput, UpstreamAPI
from persai.jobs import TimeRange
from tests.support.httpd import Handler, serve

NOW = datetime(2026, 11, 24, 14, 0, 0, tzinfo=UTC)
DATASOURCE = "/proxy/projects/shop/datasources/prom"


def success(data: Any, **extra: Any) -> dict[str, Any]:
    """A Prometheus API answer."""
    return {"status": "success", "data": data, **extra}


class Fake:
    """Routes by exact path (Prometheus paths are under DATASOURCE); records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, path: str, body: Any = None, *, status: int = 200) -> Fake:
        self.routes[path] = lambda _request: httpx.Response(status, json=body)
        return self

    def prometheus(self, path: str, data: Any, *, status: int = 200, **extra: Any) -> Fake:
        return self.on(DATASOURCE + path, success(data, **extra), status=status)

    def handle(self, path: str, handler: Handler) -> Fake:
        self.routes[path] = handler
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        self.requests.append(request)
        handler = self.routes.get(request.url.path)
        if handler is None:
            return httpx.Response(404, json={"message": "document not found"})
        return handler(request)

    def to(self, path: str) -> list[httpx.Request]:
        """The requests to `path` (a Prometheus path or a full one)."""
        full = path if path.startswith(("/api/v1/projects", "/api/v1/global")) else None
        wanted = {path, DATASOURCE + path} if full is None else {full}
        return [r for r in self.requests if r.url.path in wanted]

    def params(self, path: str) -> list[list[tuple[str, str]]]:
        """The parameters of each request to `path`: its query string, then its form body."""
        return [_parameters(request) for request in self.to(path)]

    def methods(self, path: str) -> list[str]:
        return [request.method for request in self.to(path)]


def _parameters(request: httpx.Request) -> list[tuple[str, str]]:
    pairs = list(request.url.params.multi_items())
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        pairs += list(httpx.QueryParams(request.content.decode()).multi_items())
    return pairs


def call(
    fake: Fake,
    name: str,
    arguments: dict[str, Any],
    *,
    budget: int = 2000,
    time_range: TimeRange | None = None,
    perses: bool = True,
    max_bytes: int = 1_000_000,
    read_timeout_s: float = 10,
) -> ToolOutput:
    """Call tool `name` like the worker does; asserts the output fits the budget."""

    async def run() -> ToolOutput:
        async with serve(fake, read_timeout_s=read_timeout_s) as (perses_url, session):
            context = ToolContext(
                prometheus=UpstreamAPI(
                    session, perses_url + DATASOURCE, label=DATASOURCE, max_bytes=max_bytes
                ),
                now=NOW,
                budget_tokens=budget,
                time_range=time_range,
                perses=UpstreamAPI(session, perses_url, label="Perses", max_bytes=max_bytes)
                if perses
                else None,
            )
            toolbox = Toolbox(ALL_TOOLS, timeout_s=5)
            return await toolbox.call(context, name, json.dumps(arguments))

    output = asyncio.run(run())
    assert estimate_tokens(output.text) <= budget, output.text
    return output


def error(fake: Fake, name: str, arguments: dict[str, Any], **kwargs: Any) -> str:
    """The message of the ToolError the call raises (what the model reads)."""
    with pytest.raises(ToolError) as caught:
        call(fake, name, arguments, **kwargs)
    return str(caught.value)
