"""A model gateway that answers inside the worker, by a script, so that what is measured is
PersAI's own path (HTTP, Redis, Celery, the worker's loop, tools) and not a model.

    gateway = ScriptedGateway(Script(model_delay_s=2.0, tool_calls=(1, 2)))

With `tool_calls=(1, 2)` the first model call asks for one tool call, the second for two, and
the third answers: three model calls, three tool calls.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

from persai.agent.llama import (
    Message,
    ModelTurn,
    ToolCall,
    ToolResult,
    ToolSpec,
    UserMessage,
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
