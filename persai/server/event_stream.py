"""A Server-Sent Events response of frames encoded beforehand, lean enough for thousands.

sse-starlette's `EventSourceResponse` encodes each item it is given and opens a cancel scope
around each send; when a thousand clients follow one job, that work is done a thousand times
per event on the API's one core. The hub (`streams.EventHub.frames`) encodes each event once
for all its subscribers, so this response only writes the bytes: the frames already waiting
as one write, a comment line when nothing was sent for `ping_s`, and it stops as soon as the
client leaves (uvicorn drops writes to a closed connection silently, so it listens for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

PING = b": ping\r\n\r\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each frame on at once
]


class EventStream(Response):
    media_type = None  # set in HEADERS; a class media type would document the errors as SSE

    def __init__(
        self, frames: AsyncIterator[bytes], *, ping_s: float, status_code: int = 200
    ) -> None:  # status_code: what FastAPI reads to document the route's response
        super().__init__(status_code=status_code)
        self._frames = frames
        self._ping_s = ping_s
        self._last_sent = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": HEADERS,
        }
        if scope["method"] == "HEAD":  # headers only: a stream would never end
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        lock = asyncio.Lock()

        async def write(body: bytes) -> None:
            async with lock:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            self._last_sent = anyio.current_time()

        await send(start)
        self._last_sent = anyio.current_time()
        async with anyio.create_task_group() as group:
            group.start_soon(_until_disconnect, receive, group.cancel_scope.cancel)
            group.start_soon(self._ping, write)
            try:
                async for frame in self._frames:
                    await write(frame)
            finally:
                group.cancel_scope.cancel()
                aclose = getattr(self._frames, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _ping(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        while True:
            await anyio.sleep(max(0.0, self._last_sent + self._ping_s - anyio.current_time()))
            if anyio.current_time() - self._last_sent >= self._ping_s:
                await write(PING)


async def _until_disconnect(receive: Receive, stop: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stop()
