"""A lean SSE subscriber for many concurrent connections: raw asyncio streams, HTTP/1.1, chunked
transfer decoding and SSE framing, each event stamped with the time it was read.

    events = await subscribe("127.0.0.1", 8000, "/api/v1/investigations/ID/events", ready)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass


class Refused(Exception):
    """The server answered the subscription with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class Received:
    id: str
    event: str
    data: str
    at: float
    """Unix seconds when the subscriber read it."""


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The body of a chunked HTTP/1.1 response, chunk by chunk."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            return
        chunk = await reader.readexactly(size + 2)
        yield chunk[:-2]


def _frame(block: str, at: float) -> Received | None:
    """One SSE frame (`id:`, `event:`, `data:` lines; comments dropped), or None."""
    fields: dict[str, str] = {}
    for line in block.splitlines():
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    if "event" not in fields and "data" not in fields:
        return None
    event = fields.get("event", "message")
    return Received(fields.get("id", ""), event, fields.get("data", ""), at)


async def subscribe(
    host: str, port: int, path: str, connected: asyncio.Event | None = None, *, last: str = "done"
) -> list[Received]:
    """Every event of the stream at `path` until the event named `last` (or the stream's end).

    `connected` is set once the response headers arrived.
    """
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    writer.write(request.encode())
    received: list[Received] = []
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        if status != 200:
            raise Refused(status)
        if connected is not None:
            connected.set()
        buffer = ""
        async for chunk in _chunks(reader):
            buffer += chunk.decode()
            at = time.time()
            *blocks, buffer = buffer.replace("\r\n", "\n").split("\n\n")
            for block in blocks:
                frame = _frame(block, at)
                if frame is None:
                    continue
                received.append(frame)
                if frame.event == last:
                    return received
    finally:
        writer.close()
    return received
