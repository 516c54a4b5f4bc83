"""PersAI's job events as the chunks of a Llama Stack 0.2 agent turn, for the Perses plugin.

The plugin (`@inecas/persai`) reads a turn's stream with the npm `llama-stack-client` 0.2 SDK
and draws its chat from these payloads (`chunk.event.payload`):

    turn_start      {turn_id}
    step_start      {step_type, step_id}
    step_progress   {step_type: "inference", step_id, delta: {type: "text", text}}   appended
    step_complete   {step_type, step_id, step_details}   a tool_execution step's tool_calls and
                    tool_responses pair up by position; the chat keys tool messages by call_id
    turn_complete   {turn: {..., output_message: {content}}}   replaces the last text shown

A failure is one `{"error": {"message": ...}}` chunk, as Llama Stack's own server sends it.
Each tool call becomes a tool_execution step of its own, completed when its result arrives; the
text around tool calls becomes inference steps. The plugin charts an `execute_range_query` call
from its `arguments` (`start` and `end` when both are set, else a duration), so a range query's
arguments in its completed step are the absolute window the tool queried, as its result reports
it, rather than what the model wrote (`now-1h`, a duration, or nothing). Step ids derive from
the turn id, so replaying a job's events gives the same chunks again (a retried request
re-attaches to its job).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from persai.agent import TOOL_ERROR_PREFIX
from persai.jobs import Event, JobStatus

__all__ = ["TurnFrames", "error_chunk"]

Chunk = dict[str, Any]

# What Llama Stack put before a failed client tool's output; the worker writes it the same way.

_FAILED = "the investigation failed"
_CANCELLED = "the investigation was cancelled"


def error_chunk(message: str) -> Chunk:
    """The one chunk that says a turn failed."""
    return {"error": {"message": message}}


def _chunk(event_type: str, **payload: Any) -> Chunk:
    return {"event": {"payload": {"event_type": event_type, **payload}}}


def _time(event_id: str) -> str:
    """The time a Redis Stream entry was added (its id is `milliseconds-sequence`), ISO 8601."""
    milliseconds = int(event_id.split("-", 1)[0])
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat()


class TurnFrames:
    """Translates the events of one job, in order, into the chunks of one agent turn."""

    def __init__(self, *, turn_id: str, session_id: str, question: str) -> None:
        self.turn_id = turn_id
        self.session_id = session_id
        self.question = question
        self.started_at: str | None = None
        """When the job was stored: the time of its first event."""
        self.finished = False
        self._steps = 0
        self._inference: tuple[str, str, list[str]] | None = None  # step id, started at, text
        self._pending: dict[str, tuple[str, str, Chunk]] = {}  # call id: step id, started, call
        self._answer: str | None = None
        self._error: str | None = None
        self._handlers: dict[str, Callable[[Event], list[Chunk]]] = {
            "message_delta": self._delta,
            "tool_call": self._tool_call,
            "tool_result": self._tool_result,
            "answer": self._remember_answer,
            "error": self._remember_error,
            "status": self._status,
            "done": self._status,
        }

    def start(self) -> list[Chunk]:
        return [_chunk("turn_start", turn_id=self.turn_id)]

    def feed(self, event: Event) -> list[Chunk]:
        """The chunks that `event` adds; nothing once the turn has finished."""
        if self.started_at is None:
            self.started_at = _time(event.id)
        handler = self._handlers.get(event.event)
        if self.finished or handler is None:
            return []
        return handler(event)

    def _step_id(self) -> str:
        self._steps += 1
        return f"{self.turn_id}-step-{self._steps}"

    def _delta(self, event: Event) -> list[Chunk]:
        text = str(event.data.get("text") or "")
        chunks = []
        if self._inference is None:
            self._inference = (self._step_id(), _time(event.id), [])
            chunks.append(_chunk("step_start", step_type="inference", step_id=self._inference[0]))
        step_id, _, parts = self._inference
        parts.append(text)
        delta = {"type": "text", "text": text}
        chunks.append(_chunk("step_progress", step_type="inference", step_id=step_id, delta=delta))
        return chunks

    def _end_inference(self, event: Event) -> list[Chunk]:
        if self._inference is None:
            return []
        step_id, started_at, parts = self._inference
        self._inference = None
        details = {
            "step_type": "inference",
            "step_id": step_id,
            "turn_id": self.turn_id,
            "model_response": _assistant("".join(parts)),
            "started_at": started_at,
            "completed_at": _time(event.id),
        }
        return [_step_complete("inference", step_id, details)]

    def _tool_call(self, event: Event) -> list[Chunk]:
        chunks = self._end_inference(event)
        step_id = self._step_id()
        call_id = str(event.data.get("call_id", step_id))
        call = _call(call_id, str(event.data.get("tool", "")), event.data.get("arguments"))
        self._pending[call_id] = (step_id, _time(event.id), call)
        chunks.append(_chunk("step_start", step_type="tool_execution", step_id=step_id))
        return chunks

    def _tool_result(self, event: Event) -> list[Chunk]:
        data = event.data
        call_id = str(data.get("call_id", ""))
        tool = str(data.get("tool", ""))
        if call_id in self._pending:
            step_id, started_at, call = self._pending.pop(call_id)
        else:  # a result without its call (the stream was trimmed): still show it
            step_id, started_at, call = self._step_id(), _time(event.id), _call(call_id, tool, {})
        queried = _queried_window(tool, data.get("data"))
        if queried is not None:
            call = _call(call_id, str(call["tool_name"]), queried)
        content = str(data.get("output") or "")
        if data.get("status") == "error" and not content.startswith(TOOL_ERROR_PREFIX):
            content = f"{TOOL_ERROR_PREFIX} {tool}: {content}"
        details = {
            "step_type": "tool_execution",
            "step_id": step_id,
            "turn_id": self.turn_id,
            "tool_calls": [call],
            "tool_responses": [{"call_id": call_id, "tool_name": tool, "content": content}],
            "started_at": started_at,
            "completed_at": _time(event.id),
        }
        return [_step_complete("tool_execution", step_id, details)]

    def _remember_answer(self, event: Event) -> list[Chunk]:
        self._answer = str(event.data.get("text") or "")
        return []

    def _remember_error(self, event: Event) -> list[Chunk]:
        self._error = str(event.data.get("message") or _FAILED)
        return []

    def _status(self, event: Event) -> list[Chunk]:
        status = event.data.get("status")
        if status not in {s.value for s in JobStatus if s.terminal}:
            return []
        self.finished = True
        if status == JobStatus.SUCCEEDED:
            return [*self._end_inference(event), self._turn_complete(event)]
        if status == JobStatus.CANCELLED:
            return [error_chunk(_CANCELLED)]
        return [error_chunk(self._error or _FAILED)]

    def _turn_complete(self, event: Event) -> Chunk:
        turn = {
            "turn_id": self.turn_id,
            "session_id": self.session_id,
            "input_messages": [{"role": "user", "content": self.question}],
            "output_message": _assistant(self._answer or ""),
            "steps": [],
            "started_at": self.started_at or _time(event.id),
            "completed_at": _time(event.id),
        }
        return _chunk("turn_complete", turn=turn)


def _assistant(content: str) -> Chunk:
    return {"role": "assistant", "content": content, "stop_reason": "end_of_turn", "tool_calls": []}


def _call(call_id: str, tool: str, arguments: Any) -> Chunk:
    """A ToolCall whose `arguments` is an object (the plugin reads its fields)."""
    arguments = arguments if isinstance(arguments, dict) else {}
    return {
        "call_id": call_id,
        "tool_name": tool,
        "arguments": arguments,
        "arguments_json": json.dumps(arguments),
    }


def _queried_window(tool: str, result: Any) -> dict[str, Any] | None:
    """What the plugin should chart for a range query: the window its result says it queried.

    `execute_range_query` reports `{query, start, end, step_s}` in its result's data, `start`
    and `end` in RFC 3339 UTC (whole seconds, exactly the times sent to Prometheus), which
    JavaScript's `new Date()` parses. None for other tools and for results without a window.
    """
    if tool != "execute_range_query" or not isinstance(result, dict):
        return None
    query, start, end = result.get("query"), result.get("start"), result.get("end")
    if not (isinstance(query, str) and isinstance(start, str) and isinstance(end, str)):
        return None
    window: dict[str, Any] = {"query": query, "start": start, "end": end}
    step_s = result.get("step_s")
    if isinstance(step_s, int | float) and not isinstance(step_s, bool) and step_s > 0:
        window["step"] = _duration(float(step_s))
    return window


def _duration(seconds: float) -> str:
    """`30s`, or `1500ms` for a fraction: a Prometheus duration."""
    if seconds.is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _step_complete(step_type: str, step_id: str, details: Chunk) -> Chunk:
    return _chunk("step_complete", step_type=step_type, step_id=step_id, step_details=details)
