import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from persai.server.event_stream import PING, EventStream

pytestmark = pytest.mark.anyio

GET = {"type": "http", "method": "GET"}


async def never_leaves() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_the_frames_are_written_as_they_are_then_the_body_ends() -> None:
    async def frames() -> AsyncIterator[bytes]:
        yield b"id: 1-0\r\nevent: status\r\ndata: {}\r\n\r\n"
        yield b"id: 1-1\r\nevent: done\r\ndata: {}\r\n\r\n"

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await EventStream(frames(), ping_s=60)(GET, never_leaves, send)
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-type"].startswith(b"text/event-stream")
    assert [m["body"] for m in sent[1:]] == [
        b"id: 1-0\r\nevent: status\r\ndata: {}\r\n\r\n",
        b"id: 1-1\r\nevent: done\r\ndata: {}\r\n\r\n",
        b"",
    ]
    assert sent[-1]["more_body"] is False


async def test_a_quiet_stream_is_pinged_and_a_client_that_leaves_closes_it() -> None:
    closed = asyncio.Event()
    pinged = asyncio.Event()

    async def frames() -> AsyncIterator[bytes]:
        try:
            await asyncio.Event().wait()
            yield b""
        finally:
            closed.set()

    async def send(message: dict[str, Any]) -> None:
        if message.get("body") == PING:
            pinged.set()

    async def leaves_once_pinged() -> dict[str, Any]:
        await pinged.wait()
        return {"type": "http.disconnect"}

    stream = EventStream(frames(), ping_s=0.01)
    await asyncio.wait_for(stream(GET, leaves_once_pinged, send), 10)
    assert closed.is_set()  # its subscription (and stream slot) given back at once


async def test_head_gets_the_headers_only() -> None:
    async def frames() -> AsyncIterator[bytes]:
        raise AssertionError("a HEAD must not follow the job")
        yield b""

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await EventStream(frames(), ping_s=60)({"type": "http", "method": "HEAD"}, never_leaves, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b""
