from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from persai.server.middleware import RequestContext

pytestmark = pytest.mark.anyio

CAP = 1024
CHUNK = 256


class EchoApp:
    """Answers with the size of the body it read, and records every message it received."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size, more = 0, True
        while more:
            message = await receive()
            self.received.append(message)
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


class Body:
    """A chunked request body of `chunks` times CHUNK bytes that counts what was taken of it."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += CHUNK
            yield b"x" * CHUNK


async def post(app: EchoApp, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=RequestContext(app, max_body_bytes=CAP))
    async with httpx.AsyncClient(transport=transport, base_url="http://persai") as client:
        return await client.post("/", **kwargs)  # type: ignore[arg-type]


async def test_a_chunked_body_past_the_cap_is_refused_before_the_app_sees_it() -> None:
    app, body = EchoApp(), Body(chunks=100_000)  # 25 MB
    response = await post(app, content=body)
    assert response.status_code == 413
    assert response.json() == {
        "error": {"type": "payload_too_large", "message": f"the body is larger than {CAP} bytes"}
    }
    assert response.headers["connection"] == "close"
    assert app.received == []  # nothing parsed, nobody authenticated
    assert body.sent <= CAP + CHUNK  # and no more read than the cap and one chunk


async def test_a_content_length_past_the_cap_is_refused_unread() -> None:
    app = EchoApp()
    response = await post(app, content=b"x" * (CAP + 1))
    assert response.status_code == 413
    assert app.received == []


async def test_a_body_within_the_cap_reaches_the_app_whole() -> None:
    app = EchoApp()
    chunked = await post(app, content=Body(chunks=CAP // CHUNK))
    assert (chunked.status_code, chunked.text) == (200, str(CAP))
    assert len(app.received) == 1  # as one message
    sized = await post(EchoApp(), content=b"x" * CAP)
    assert (sized.status_code, sized.text) == (200, str(CAP))
    assert "x-request-id" in sized.headers


async def test_after_the_body_the_app_hears_the_client_leave() -> None:
    """Streaming responses wait on `receive` for the disconnect."""
    messages: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    heard: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        heard.extend([await receive(), await receive()])

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    scope = {"type": "http", "headers": [], "method": "POST", "path": "/"}
    await RequestContext(app, max_body_bytes=CAP)(scope, receive, send)
    assert heard == [
        {"type": "http.request", "body": b"abc", "more_body": False},
        {"type": "http.disconnect"},
    ]
