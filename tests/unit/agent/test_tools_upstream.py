"""UpstreamAPI: the user's token, refreshed once when refused; every failure a tool error."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from persai.agent.tools import ToolError, UpstreamAPI, UpstreamSlots, UpstreamStatusError
from persai.launcher import free_port
from tests.support.httpd import serve, tools_session

LABEL = "/proxy/globaldatasources/prom"


class Tokens:
    def __init__(self) -> None:
        self.current = "old"
        self.refreshes = 0

    async def bearer(self) -> str:
        return self.current

    async def refresh(self) -> str:
        self.refreshes += 1
        self.current = f"new{self.refreshes}"
        return self.current


def _get(handler: Any, *, tokens: Tokens | None = None, max_bytes: int = 1_000_000) -> Any:
    async def run() -> Any:
        async with serve(handler) as (perses_url, session):
            api = UpstreamAPI(
                session, perses_url + LABEL, label=LABEL, tokens=tokens, max_bytes=max_bytes
            )
            return await api.get("/api/v1/query", {"query": "up"})

    return asyncio.run(run())


def test_a_refused_token_is_refreshed_once_and_the_call_retried() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401, json={"message": "invalid or expired jwt"})
        return httpx.Response(200, json={"status": "success", "data": []})

    tokens = Tokens()
    assert _get(handler, tokens=tokens) == {"status": "success", "data": []}
    assert seen == ["Bearer old", "Bearer new1"]


def test_a_token_refused_twice_asks_the_user_to_sign_in() -> None:
    tokens = Tokens()
    with pytest.raises(UpstreamStatusError, match="the user may need to sign in again") as caught:
        _get(lambda _r: httpx.Response(401, json={}), tokens=tokens)
    assert (caught.value.status, tokens.refreshes) == (401, 1)


def test_prometheus_errors_keep_their_type_and_message() -> None:
    body = {"status": "error", "errorType": "execution", "error": "too many samples"}
    with pytest.raises(UpstreamStatusError) as caught:
        _get(lambda _r: httpx.Response(422, json=body))
    assert (caught.value.status, caught.value.error_type) == (422, "execution")
    assert str(caught.value) == "Prometheus rejected the request (execution): too many samples"


def test_an_answer_too_large_is_refused_with_advice() -> None:
    big = httpx.Response(200, content=b"x" * 3_000_000)
    with pytest.raises(ToolError, match="larger than 2 MB; ask for less: topk"):
        _get(lambda _r: big, max_bytes=2_000_000)


def test_an_unreachable_upstream() -> None:
    async def run() -> Any:
        async with tools_session() as session:
            url = f"http://127.0.0.1:{free_port()}" + LABEL  # nothing listens there
            return await UpstreamAPI(session, url, label=LABEL, max_bytes=1000).get("/api/v1/query")

    with pytest.raises(ToolError, match=f"^{LABEL} is unreachable: ClientConnectorError$"):
        asyncio.run(run())


def test_a_missing_endpoint() -> None:
    with pytest.raises(UpstreamStatusError, match=r"has no such endpoint or resource \(HTTP 404\)"):
        _get(lambda _r: httpx.Response(404, text="404 page not found"))


def test_requests_in_flight_to_one_upstream_are_bounded() -> None:
    in_flight: Counter[str] = Counter()
    most: Counter[str] = Counter()

    async def slow(request: httpx.Request) -> httpx.Response:
        upstream = request.url.path.split("/api/")[0]
        in_flight[upstream] += 1
        most[upstream] = max(most[upstream], in_flight[upstream])
        await asyncio.sleep(0.05)
        in_flight[upstream] -= 1
        return httpx.Response(200, json={"status": "success", "data": []})

    async def run() -> list[Any]:
        slots = UpstreamSlots(3)
        async with serve(slow) as (url, session):
            api = UpstreamAPI(session, url + LABEL, label=LABEL, max_bytes=1000, slots=slots)
            other = UpstreamAPI(session, url + "/other", label="other", max_bytes=1000, slots=slots)
            calls = [api.get("/api/v1/query") for _ in range(12)]
            return await asyncio.gather(*calls, other.get("/api/v1/query"))

    assert len(asyncio.run(run())) == 13
    assert most == {LABEL: 3, "/other": 1}  # each upstream has slots of its own
