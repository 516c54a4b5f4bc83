"""The bounded investigation loop: model, tools, model... and always an answer at the end.

Our own loop over the Responses API (not the SDK's agent): at most `max_steps` model calls with
tools, a deadline for each model call and for the loop as a whole, tool errors handed back to the
model, and, when the steps or the time run out, one last call without tools that asks for the
best answer from what was found. Cancellation is the caller's: cancel the task running `run`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from persai import metrics
from persai.agent import history
from persai.agent.answer import StreamGuard, neutralise
from persai.agent.llama import (
    AssistantMessage,
    Message,
    ModelClient,
    ModelTurn,
    ToolCall,
    ToolResult,
    ToolSpec,
    UserMessage,
)
from persai.agent.prompt import FINAL_ANSWER_REQUEST
from persai.agent.tools import Toolbox, ToolContext, ToolError
from persai.errors import PersAIError
from persai.jobs import Step, StepStatus, Usage, utcnow

log = logging.getLogger(__name__)

TOOL_ERROR_PREFIX = "Error when running tool"
NO_FINAL_ANSWER = (
    "The investigation stopped ({reason}) before the model gave an answer; "
    "the steps show what was queried and what came back."
)


class Reporter(Protocol):
    """Where the loop tells the world what happens, as it happens."""

    async def text(self, delta: str) -> None: ...
    async def tool_call(self, step: Step) -> None: ...
    async def tool_result(self, step: Step) -> None: ...


@dataclass
class Turn:
    """One question to investigate, with the conversation before it."""

    question: str
    model: str
    instructions: str
    history: list[Message] = field(default_factory=list)


@dataclass
class Progress:
    """What the loop found so far; kept when it is cancelled or fails."""

    messages: list[Message] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    answer: str = ""
    forced: str | None = None
    """Why the answer was forced (step budget, deadline), or None."""


@dataclass
class Limits:
    max_steps: int
    model_call_timeout_s: float
    deadline: float
    """The event loop's time (`loop.time()`, monotonic seconds) at which the steps stop and the
    answer is forced from what was found."""
    history_budget_tokens: int = history.DEFAULT_BUDGET_TOKENS
    """What the conversation's earlier turns may cost each model call (`history.fit`)."""


class Investigator:
    def __init__(self, gateway: ModelClient, toolbox: Toolbox) -> None:
        self._gateway = gateway
        self._toolbox = toolbox
        self._specs = [
            ToolSpec(name=t.name, description=t.description, parameters=t.schema())
            for t in toolbox.tools.values()
        ]

    async def run(
        self,
        turn: Turn,
        context: ToolContext,
        reporter: Reporter,
        limits: Limits,
        progress: Progress,
    ) -> Progress:
        """Investigate `turn`; `progress` is filled in as it goes and returned with the answer."""
        # every model call sends the earlier turns again: within their budget, oldest cut first
        turn = replace(turn, history=history.fit(turn.history, limits.history_budget_tokens))
        progress.messages.append(UserMessage(text=turn.question))
        try:
            async with asyncio.timeout_at(limits.deadline):
                if await self._steps(turn, context, reporter, limits, progress):
                    return progress
            progress.forced = f"the limit of {limits.max_steps} steps was reached"
        except TimeoutError:
            progress.forced = "the investigation's time ran out"
        await self._final_answer(turn, progress, reporter, limits.model_call_timeout_s)
        return progress

    async def _steps(
        self,
        turn: Turn,
        context: ToolContext,
        reporter: Reporter,
        limits: Limits,
        progress: Progress,
    ) -> bool:
        """Model and tools, step after step; True once the model answers without tools."""
        for _ in range(limits.max_steps):
            reply = await self._model(turn, progress, reporter, limits.model_call_timeout_s)
            if not reply.tool_calls:
                progress.answer = reply.text
                return True
            for call in reply.tool_calls:
                await self._tool(call, context, reporter, progress)
        return False

    async def _model(
        self,
        turn: Turn,
        progress: Progress,
        reporter: Reporter,
        timeout_s: float,
        *,
        tools: bool = True,
        instructions: str | None = None,
    ) -> ModelTurn:
        started = time.monotonic()
        # the text is Markdown that clients render: nothing in it may load by itself (answer.py)
        on_text = StreamGuard(reporter.text)
        reply = await self._gateway.stream_turn(  # the client keeps to the deadline
            model=turn.model,
            instructions=instructions or turn.instructions,
            messages=[*turn.history, *progress.messages],
            tools=self._specs if tools else [],
            on_text=on_text,
            timeout_s=timeout_s,
        )
        await on_text.end()
        reply.text = neutralise(reply.text)  # what the answer, the history and the stream show
        elapsed = time.monotonic() - started
        metrics.MODEL_CALLS.labels(turn.model).inc()
        metrics.MODEL_DURATION.labels(turn.model).observe(elapsed)
        metrics.MODEL_TOKENS.labels(turn.model, "input").inc(reply.input_tokens)
        metrics.MODEL_TOKENS.labels(turn.model, "output").inc(reply.output_tokens)
        usage = progress.usage
        usage.model_calls += 1
        usage.input_tokens += reply.input_tokens
        usage.output_tokens += reply.output_tokens
        usage.model_time_ms += elapsed * 1000
        if reply.text:
            progress.messages.append(AssistantMessage(text=reply.text))
        if tools:  # calls of tools it was not offered get no result: keep them out of the history
            progress.messages.extend(reply.tool_calls)
        return reply

    async def _tool(
        self, call: ToolCall, context: ToolContext, reporter: Reporter, progress: Progress
    ) -> None:
        step = Step(call_id=call.call_id, tool=call.name, arguments=_arguments(call.arguments))
        progress.steps.append(step)
        await reporter.tool_call(step)
        started = time.monotonic()
        try:
            output = await self._toolbox.call(context, call.name, call.arguments)
            step.status, step.output, step.data = StepStatus.OK, output.text, output.data
        except ToolError as exc:
            step.status, step.output = StepStatus.ERROR, f"{TOOL_ERROR_PREFIX} {call.name}: {exc}"
            step.data = exc.data  # what the call had worked out (a range query's window)
            log.info("tool %s failed: %s", call.name, exc)
        except PersAIError as exc:  # not the tool's fault (credentials gone, Perses down): fatal
            step.status, step.output = StepStatus.ERROR, f"{TOOL_ERROR_PREFIX} {call.name}: {exc}"
            step.finished_at = utcnow()
            await reporter.tool_result(step)
            raise
        elapsed = time.monotonic() - started
        step.finished_at, step.duration_ms = utcnow(), round(elapsed * 1000, 1)
        known = call.name if call.name in self._toolbox.tools else "unknown"
        metrics.TOOL_CALLS.labels(known, step.status.value).inc()
        metrics.TOOL_DURATION.labels(known).observe(elapsed)
        progress.usage.tool_calls += 1
        progress.usage.tool_time_ms += elapsed * 1000
        progress.messages.append(ToolResult(call_id=call.call_id, output=step.output or ""))
        await reporter.tool_result(step)

    async def _final_answer(
        self, turn: Turn, progress: Progress, reporter: Reporter, timeout_s: float
    ) -> None:
        """One call without tools: the best answer from what was found, saying what is missing.

        The request goes in the instructions, not in a user message, so that the conversation's
        history keeps only what the user asked.
        """
        log.info("forcing a final answer: %s", progress.forced)
        request = FINAL_ANSWER_REQUEST.format(reason=progress.forced)
        reply = await self._model(
            turn,
            progress,
            reporter,
            timeout_s,
            tools=False,
            instructions=f"{turn.instructions}\n\n{request}",
        )
        progress.answer = reply.text or NO_FINAL_ANSWER.format(reason=progress.forced)


def _arguments(raw: str) -> dict[str, Any]:
    """The model's arguments as an object, for the record; anything else is kept as text."""
    try:
        value = json.loads(raw or "{}")
    except (ValueError, RecursionError):  # not JSON, nested too deep, an integer too long
        return {"_unparsed": raw}
    return value if isinstance(value, dict) else {"_unparsed": raw}
