"""Model clients that answer by a script, in this process: for the fast tests of the agent
loop, the runner and the routes, and for the benchmarks, so that what is measured is PersAI's
own path (HTTP, Redis, Celery, the worker's loop, tools) and not a model.

    model = ScriptedClient([ask_tools(("execute_range_query", {"query": "up"})), answer("Fine.")])
    gateway = ScriptedGateway(Script(model_delay_s=2.0, tool_calls=(1, 2)))

`ScriptedClient` plays its replies in order (the last one again once they run out) and records
every call. With `Script(tool_calls=(1, 2))` the first model call asks for one tool call, the
second for two, and the third answers: three model calls, three tool calls (the benchmarks pass
the script to their worker processes as JSON).

Both live in the package, not under tests/, because the benchmarks need them too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from persai.agent.llama import (
    Message,
    ModelTurn,
    ToolCall,
    ToolResult,
    ToolSpec,
    UserMessage,
    past_deadline,
)

MODEL = "bench/scripted"
STAMP_PREFIX = "t="
"""Stamped answer deltas read `t=<unix seconds>;`: when the worker handed the delta over."""


@dataclass(frozen=True)
class Script:
    model_delay_s: float = 0.0
    """How long every model call takes (asyncio.sleep, like waiting on a provider)."""
    tool_calls: tuple[int, ...] = ()
    """Tool calls asked for by the 1st, 2nd, ... model call; the next call answers."""
    query: str = 'sum by (service) (rate(http_requests_total{job="bench"}[5m]))'
    """The PromQL of every tool call (`execute_range_query` over the last hour)."""
    answer_deltas: int = 1
    """Pieces the answer is streamed in."""
    delta_interval_s: float = 0.0
    """Pause between answer pieces."""
    stamp_deltas: bool = False
    """Each piece carries the wall-clock time it was handed over (`t=<seconds>;`)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Script:
        raw = json.loads(text)
        raw["tool_calls"] = tuple(raw.get("tool_calls", ()))
        return cls(**raw)


class ScriptedGateway:
    """A ModelClient answering by `script`, inside the worker's event loop."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._ids = itertools.count()

    async def stream_turn(
        self,
        *,
        model: str,
        instructions: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        on_text: Callable[[str], Awaitable[None]],
        timeout_s: float | None = None,
    ) -> ModelTurn:
        script = self.script
        if script.model_delay_s:
            await asyncio.sleep(script.model_delay_s)
        asked = _tool_calls_asked(script.tool_calls, _results_since_question(messages))
        if asked and tools:
            calls = [self._call(script.query) for _ in range(asked)]
            return ModelTurn(tool_calls=calls, input_tokens=100, output_tokens=20)
        turn = ModelTurn(input_tokens=100)
        for index in range(script.answer_deltas):
            if index and script.delta_interval_s:
                await asyncio.sleep(script.delta_interval_s)
            delta = f"part {index}. "
            if script.stamp_deltas:
                delta = f"{STAMP_PREFIX}{time.time():.6f};"
            turn.text += delta
            turn.output_tokens += 1
            await on_text(delta)
        return turn

    def _call(self, query: str) -> ToolCall:
        arguments = json.dumps({"query": query, "duration": "1h"})
        return ToolCall(f"call_{next(self._ids)}", "execute_range_query", arguments)

    async def list_models(self) -> list[str]:
        return [MODEL]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _results_since_question(messages: Sequence[Message]) -> int:
    """Tool results after the last user message: how far this turn has come."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, UserMessage):
            break
        if isinstance(message, ToolResult):
            count += 1
    return count


def _tool_calls_asked(plan: tuple[int, ...], results: int) -> int:
    """How many tool calls the model asks for now, given the results it has seen."""
    done = 0
    for asked in plan:
        if results == done:
            return asked
        done += asked
    return 0


Reply = ModelTurn | BaseException | Callable[["Call"], Awaitable[ModelTurn]]
"""A scripted reply: a turn, an error to raise, or a coroutine function of the call (which may
sleep, like a slow model, or wait for a test's event)."""


def answer(text: str, *, input_tokens: int = 10, output_tokens: int = 5) -> ModelTurn:
    """A reply without tool calls: the final answer."""
    return ModelTurn(text=text, input_tokens=input_tokens, output_tokens=output_tokens)


def ask_tools(*calls: tuple[str, dict[str, Any] | str]) -> ModelTurn:
    """A reply asking for these tool calls (name, arguments: an object, or raw text)."""
    ids = itertools.count(1)
    asked = [
        ToolCall(f"call_{next(ids)}", name, args if isinstance(args, str) else json.dumps(args))
        for name, args in calls
    ]
    return ModelTurn(tool_calls=asked, input_tokens=10, output_tokens=5)


@dataclass
class Call:
    """What one model call was sent."""

    model: str
    instructions: str
    messages: list[Message]
    tools: list[str]
    """The names of the tools offered (none for a forced final answer)."""


@dataclass
class ScriptedClient:
    """A ModelClient playing `replies` in order; the last one again once they run out. Text
    is streamed to `on_text` in `pieces` parts."""

    replies: list[Reply]
    served: list[str] | BaseException = field(default_factory=lambda: [MODEL])
    """What `list_models` returns, or raises."""
    pieces: int = 2
    calls: list[Call] = field(default_factory=list)
    closed: bool = False

    async def stream_turn(
        self,
        *,
        model: str,
        instructions: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        on_text: Callable[[str], Awaitable[None]],
        timeout_s: float | None = None,
    ) -> ModelTurn:
        """One reply, within `timeout_s` as the gateway keeps it (`past_deadline` after it)."""
        call = Call(model, instructions, list(messages), [tool.name for tool in tools])
        self.calls.append(call)
        reply = self.replies[min(len(self.calls), len(self.replies)) - 1]
        if isinstance(reply, BaseException):
            raise reply
        try:
            async with asyncio.timeout(timeout_s):
                turn = await reply(call) if callable(reply) else reply
        except TimeoutError as exc:
            assert timeout_s is not None
            raise past_deadline(model, timeout_s) from exc
        turn = ModelTurn(turn.text, list(turn.tool_calls), turn.input_tokens, turn.output_tokens)
        size = max(1, -(-len(turn.text) // self.pieces))
        for start in range(0, len(turn.text), size):
            await on_text(turn.text[start : start + size])
        return turn

    async def list_models(self) -> list[str]:
        if isinstance(self.served, BaseException):
            raise self.served
        return list(self.served)

    async def models(self) -> list[str]:
        """As `ModelGateway.models` (the API's way), without its cache."""
        return await self.list_models()

    async def aclose(self) -> None:
        self.closed = True
