"""The model gateway against stand-ins for Llama Stack on loopback ports: a restarting stack
(connections refused, closed, broken off) costs a model call a wait, not the investigation;
and a hanging stack holds no caller up for longer than one lookup of the models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest

from persai.agent.catalog import ModelCatalog
from persai.agent.llama import ModelGateway, ModelTurn, UserMessage
from persai.errors import ModelUnavailable
from tests.support.httpd import serve
from tests.support.ports import free_port

pytestmark = pytest.mark.anyio

MODEL = "llm/scripted"
ANSWER = ["The error rate ", "rose at 14:05 ", "on checkout."]


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


CREATED = _sse({"type": "response.created", "sequence_number": 0, "response": {"id": "r1"}})
DELTAS = [
    _sse({"type": "response.output_text.delta", "delta": text, "sequence_number": 1 + n})
    for n, text in enumerate(ANSWER)
]
COMPLETED = _sse(
    {
        "type": "response.completed",
        "sequence_number": 9,
        "response": {"id": "r1", "usage": {"input_tokens": 7, "output_tokens": 5}},
    }
)


class FlakyStack:
    """A Responses API endpoint on a fixed loopback port that answers each request as its
    script says: `close` (the connection closes before any response byte), `created` (the
    stream starts, then breaks off before any text), `text` (it breaks off after a text delta)
    or `answer` (the whole streamed answer, also once the script runs out)."""

    def __init__(self, *script: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.script = list(script)
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        self.requests += 1
        how = self.script.pop(0) if self.script else "answer"
        if how != "close":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            )
            parts = {"created": [CREATED], "text": [CREATED, DELTAS[0]]}.get(
                how, [CREATED, *DELTAS, COMPLETED, b"data: [DONE]\n\n"]
            )
            for part in parts:
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            if how == "answer":
                writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()  # mid-body for `created` and `text`: the chunked body never ends


@asynccontextmanager
async def running(stack: FlakyStack) -> AsyncIterator[FlakyStack]:
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


class Deltas:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, delta: str) -> None:
        self.seen.append(delta)


async def turn(gateway: ModelGateway, deltas: Deltas) -> ModelTurn:
    return await gateway.stream_turn(
        model=MODEL,
        instructions="",
        messages=[UserMessage("Why did checkout fail?")],
        tools=[],
        on_text=deltas,
    )


@asynccontextmanager
async def gateway_for(url: str, timeout_s: float = 10) -> AsyncIterator[ModelGateway]:
    gateway = ModelGateway(url, timeout_s=timeout_s, backoff_s=0.05)
    try:
        yield gateway
    finally:
        await gateway.aclose()


async def test_a_stack_that_restarts_costs_the_call_a_wait_not_an_error() -> None:
    stack = FlakyStack()
    deltas = Deltas()
    async with gateway_for(stack.url) as gateway:
        call = asyncio.create_task(turn(gateway, deltas))
        await asyncio.sleep(1.0)  # refused meanwhile: nothing listens on the port
        assert not call.done()
        async with running(stack):
            reply = await asyncio.wait_for(call, 5)
    assert reply.text == "".join(ANSWER)
    assert deltas.seen == ANSWER  # each delta once
    assert stack.requests == 1


@pytest.mark.parametrize("breaks", ["close", "created"])
async def test_a_connection_broken_before_any_output_is_tried_again(breaks: str) -> None:
    deltas = Deltas()
    async with running(FlakyStack(breaks, breaks)) as stack, gateway_for(stack.url) as gateway:
        reply = await turn(gateway, deltas)
    assert reply.text == "".join(ANSWER)
    assert (reply.input_tokens, reply.output_tokens) == (7, 5)
    assert deltas.seen == ANSWER  # nothing shown twice
    assert stack.requests == 3


async def test_a_stream_broken_after_text_is_not_tried_again() -> None:
    deltas = Deltas()
    async with running(FlakyStack("text")) as stack, gateway_for(stack.url) as gateway:
        with pytest.raises(ModelUnavailable, match="broke while the model was answering"):
            await turn(gateway, deltas)
    assert deltas.seen == ANSWER[:1]  # what was shown is not shown again
    assert stack.requests == 1


class LoopLag:
    """The worst lateness of this event loop while it runs: a ticker that sleeps `tick_s`
    and notes by how much more it slept (a loaded host makes every wake-up late)."""

    def __init__(self, tick_s: float = 0.01) -> None:
        self.tick_s, self.worst_s = tick_s, 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.tick_s)
            self.worst_s = max(self.worst_s, loop.time() - before - self.tick_s)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_a_stack_down_for_good_fails_the_call_by_its_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused connections are tried again, each wait at most half the time left, until less
    than one backoff is left: the call fails within a backoff of its deadline, late only by
    as much as the event loop itself ran late."""
    timeout_s, backoff_s = 1.5, 0.05
    loop = asyncio.get_running_loop()
    lag = LoopLag()
    gateway = ModelGateway(
        f"http://127.0.0.1:{free_port()}", timeout_s=timeout_s, backoff_s=backoff_s
    )
    try:
        started = loop.time()
        with (
            caplog.at_level(logging.WARNING, logger="persai.agent.llama"),
            pytest.raises(ModelUnavailable, match=r"^Llama Stack is unreachable: ConnectError$"),
        ):
            await turn(gateway, Deltas())
        failed_after_s = loop.time() - started
    finally:
        await lag.stop()
        await gateway.aclose()
    waits = [
        float(cast(tuple[Any, ...], r.args)[-1])
        for r in caplog.records
        if r.msg.startswith("Llama Stack unreachable")
    ]
    assert len(waits) >= 2  # tried again, more than once
    assert sum(waits) < timeout_s  # the waits fit in the deadline, whatever their schedule
    assert timeout_s - backoff_s < failed_after_s  # tried until near the deadline
    assert failed_after_s < timeout_s + backoff_s + lag.worst_s  # not past it


# The models: a Llama Stack that hangs on /v1/models, or answers it.


def models_body(*ids: str) -> httpx.Response:
    data = [
        {"id": i, "created": 0, "owned_by": "x", "custom_metadata": {"model_type": "llm"}}
        for i in ids
    ]
    return httpx.Response(200, json={"data": data})


class Models:
    """A `/v1/models` handler that counts requests; with `hang`, it answers only once the
    test ends (a hanging stack); with `delay_s`, that late."""

    def __init__(self, *ids: str, hang: bool = False, delay_s: float = 0.0) -> None:
        self.ids, self.hang, self.delay_s, self.requests = ids, hang, delay_s, 0
        self.released = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.hang:
            await self.released.wait()
        await asyncio.sleep(self.delay_s)
        return models_body(*self.ids)


@asynccontextmanager
async def catalog_of(handler: Models, **limits: float) -> AsyncIterator[ModelCatalog]:
    async with serve(handler) as (url, _), gateway_for(url) as gateway:
        try:
            yield ModelCatalog(gateway.list_models, **limits)
        finally:
            handler.released.set()


async def outcome(call: Awaitable[list[str]]) -> tuple[float, object]:
    """How long `call` took, and what it returned or raised."""
    started = time.monotonic()
    try:
        result: object = await call
    except ModelUnavailable as exc:
        result = exc
    return time.monotonic() - started, result


async def test_callers_of_a_hanging_stack_wait_one_lookup_then_none() -> None:
    hanging = Models(MODEL, hang=True)
    async with catalog_of(hanging, timeout_s=0.5, failure_s=1.0) as catalog:
        # 20 submissions and probes at once: one lookup, each waits for it, none for a queue
        results = await asyncio.gather(*(outcome(catalog.models()) for _ in range(20)))
        assert hanging.requests == 1
        assert max(took for took, _ in results) < 1.0  # a lock would have taken 20 x 0.5 s
        for _, error in results:
            assert isinstance(error, ModelUnavailable)
            assert error.message == "Llama Stack did not list its models within 0.5 s"
            assert error.retry_after_s == 1

        # the failure is remembered briefly: the next callers are answered at once
        took, error = await outcome(catalog.models())
        assert took < 0.05
        assert isinstance(error, ModelUnavailable)
        assert error.status_code == 503
        assert hanging.requests == 1

        await asyncio.sleep(1.0)  # then the stack is asked again
        took, error = await outcome(catalog.models())
        assert isinstance(error, ModelUnavailable)
        assert hanging.requests == 2


async def test_a_late_caller_waits_only_for_the_rest_of_the_lookup_in_flight() -> None:
    hanging = Models(MODEL, hang=True)
    async with catalog_of(hanging, timeout_s=1.0) as catalog:
        first = asyncio.create_task(outcome(catalog.models()))
        await asyncio.sleep(0.7)
        took, error = await outcome(catalog.models())
        assert isinstance(error, ModelUnavailable)
        assert took < 0.6  # the 0.3 s left of the first caller's lookup, not a lookup of its own
        await first
    assert hanging.requests == 1


async def test_the_list_is_cached_and_asked_again_when_stale() -> None:
    served = Models(MODEL, "llm/other")
    async with catalog_of(served, fresh_s=0.5) as catalog:
        results = await asyncio.gather(*(catalog.models() for _ in range(10)))
        assert results == [[MODEL, "llm/other"]] * 10
        assert await catalog.models() == [MODEL, "llm/other"]
        assert served.requests == 1
        await asyncio.sleep(0.6)
        assert await catalog.models() == [MODEL, "llm/other"]
        assert served.requests == 2


async def test_an_empty_list_is_asked_again_soon() -> None:
    served = Models()  # a stack still registering its models
    async with catalog_of(served, fresh_s=60, failure_s=0.3) as catalog:
        assert await catalog.models() == []
        assert await catalog.models() == []
        served.ids = (MODEL,)
        await asyncio.sleep(0.4)
        assert await catalog.models() == [MODEL]
    assert served.requests == 2


async def test_a_caller_that_leaves_does_not_stop_the_lookup_of_the_others() -> None:
    slow = Models(MODEL, delay_s=0.3)
    async with catalog_of(slow) as catalog:
        leaving = asyncio.create_task(catalog.models())
        staying = asyncio.create_task(catalog.models())
        await asyncio.sleep(0.1)
        leaving.cancel()
        assert await staying == [MODEL]
        with pytest.raises(asyncio.CancelledError):
            await leaving
    assert slow.requests == 1


async def test_the_gateway_lists_models_through_its_catalog() -> None:
    """What the API uses (`AppState.models`: submissions, `/api/v1/models`, `/readyz`)."""
    served = Models(MODEL)
    async with serve(served) as (url, _), gateway_for(url) as gateway:
        assert await asyncio.gather(*(gateway.models() for _ in range(3))) == [[MODEL]] * 3
        assert await gateway.models() == [MODEL]
    assert served.requests == 1


async def test_a_gateway_without_a_url_says_what_to_configure() -> None:
    gateway = ModelGateway("", timeout_s=1.0)
    try:
        for call in (gateway.models(), gateway.ping()):
            with pytest.raises(ModelUnavailable, match="set PERSAI_LLAMA_STACK_URL") as refused:
                await call
            assert " at " not in refused.value.message  # no empty address
    finally:
        await gateway.aclose()
