"""ASGI middleware: a request id on every request (and its log lines), a cap on body size."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persai.errors import error_response
from persai.logging import request_id

_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestContext:
    """Takes a sane `X-Request-ID` from the client or makes one; echoes it; binds it to logs.

    The body is read here, counting its bytes as they arrive, before anything parses it or
    authenticates its sender: past `max_body_bytes` (announced by `Content-Length`, or seen
    in a chunked body) the answer is 413 at once, and the connection is closed so that the
    server reads no more of it. The app then gets the body as one message.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(rid, scope, receive, send)
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await self._too_large(rid, scope, receive, send)
            return
        if body["type"] == "http.disconnect":  # the client left: nobody to answer
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, _replay(body, receive), send_with_id)
        finally:
            request_id.reset(token)

    async def _too_large(self, rid: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"the body is larger than {self.max_body_bytes} bytes"
        )
        response.headers["X-Request-ID"] = rid
        response.headers["Connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> Message | None:
    """The whole body as one `http.request` message (or the `http.disconnect` that cut it
    short); None as soon as it is longer than `limit` bytes, without reading the rest."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}


def _replay(body: Message, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then whatever the client sends next (an
    `http.disconnect`, which streaming responses wait for)."""
    pending = [body]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
