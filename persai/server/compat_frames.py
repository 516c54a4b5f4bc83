"""PersAI's job events as the chunks of a Llama Stack 0.2 agent turn, for the Perses plugin.

The plugin (`@inecas/persai`) reads a turn's stream with the npm `llama-stack-client` 0.2 SDK
and draws its chat from these payloads (`chunk.event.payload`):

    turn_start      {turn_id}
    step_start      {step_type, step_id}
    step_progress   {step_type: "inference", step_id, delta: {type: "text", text}}   appended
    step_complete   {step_type, step_id, step_details}   a tool_execution step's tool_calls and
                    tool_responses pair up by position; the chat keys tool messages by call_id
    turn_complete   {turn: {..., output_message: {content}}}   replaces the last text shown

Each tool call becomes a tool_execution step of its own, completed when its result arrives; the
text around tool calls becomes inference steps. Step ids derive from the turn id, so replaying a
job's events gives the same chunks again (a retried request re-attaches to its job).

Range queries. The plugin draws every `execute_range_query` call as a chart, whatever its result
(`src/explore/persai-explorer/components/Messages.tsx` renders each tool message with `ToolCall`;
`ToolCall.tsx`, `ToolCall`, never looks at the result), over a time range taken from the call's
`arguments`: `start` and `end` when both are set, else `{pastDuration: duration || "1h"}`, where
`duration` is declared nowhere (the arguments are destructured into `query`, `start` and `end`):
a ReferenceError that blanks the chat. So a range query's arguments in its completed step are
always an absolute `{query, start, end}` (RFC 3339 UTC, whole seconds): the window its result
reports in its data (a failed query reports it too once the window was resolved), with the step;
else, when none was resolved (time arguments the tool could not parse, invalid arguments, a
timeout), the hour before the call: what the tool queries for a call without a window (the
plugin sends no dashboard range) and the "1h" the plugin's fallback means to draw, fixed in time
rather than moving with every redraw. The model's own arguments stay in the native API.

Failures. A failed or cancelled investigation does not end with Llama Stack's `{"error":
{"message"}}` chunk, because the plugin cannot draw it. The SDK 0.2 yields it as one more chunk
(`Stream.fromSSEResponse` yields `JSON.parse` of every `data:` line and throws on no error
payload), so it never reaches the `catch` in `PersaiExplorer.tsx`'s `handleSubmit`, the only
path to the plugin's error `Alert` (a frame that is not JSON would, but as a SyntaxError about
JSON, not the reason); the plugin's reducer `updateMessagesFromChunk` then reads
`chunk.event.payload` of it inside a React state updater: a TypeError that Perses's error
boundary shows instead of the whole chat, without the reason. So the turn ends the way the
reducer draws text: the reason as inference text ("The investigation failed: <reason>", "The
investigation was cancelled."), after any text already shown, then `turn_complete` whose
`output_message.content` is exactly the text the plugin's last agent message then holds, so its
replacement (`updateChunk(..., {full})`) keeps what was shown. The same goes for a stream that
cannot follow its job to the end (`TurnFrames.fail`). The reason stays in the native API
(`status`, `error`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from persai.agent import TOOL_ERROR_PREFIX
from persai.agent.timeparse import rfc3339
from persai.agent.tools.prometheus import DEFAULT_RANGE
from persai.jobs import Event, JobStatus

__all__ = ["TurnFrames"]

Chunk = dict[str, Any]

_RANGE_QUERY = "execute_range_query"
_FAILED = "The investigation failed"
_CANCELLED = "The investigation was cancelled."


def _chunk(event_type: str, **payload: Any) -> Chunk:
    return {"event": {"payload": {"event_type": event_type, **payload}}}


def _moment(event_id: str) -> datetime:
    """When a Redis Stream entry was added (its id is `milliseconds-sequence`)."""
    return datetime.fromtimestamp(int(event_id.split("-", 1)[0]) / 1000, UTC)


def _time(event_id: str) -> str:
    """The time a Redis Stream entry was added, ISO 8601."""
    return _moment(event_id).isoformat()


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
        self._pending: dict[str, tuple[str, datetime, Chunk]] = {}  # call id: step, called, call
        self._shown = ""
        """The text of the plugin's last agent message: what streamed since the last tool."""
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

    def fail(self, reason: str | None = None) -> list[Chunk]:
        """The chunks that end the turn as failed, for a stream that cannot follow its job to
        the end (the store failed, the job is gone); nothing once the turn has finished."""
        if self.finished:
            return []
        return self._end_with(_failed(reason), datetime.now(UTC).isoformat())

    def _step_id(self) -> str:
        self._steps += 1
        return f"{self.turn_id}-step-{self._steps}"

    def _text(self, text: str, at: str) -> list[Chunk]:
        chunks = []
        if self._inference is None:
            self._inference = (self._step_id(), at, [])
            chunks.append(_chunk("step_start", step_type="inference", step_id=self._inference[0]))
        step_id, _, parts = self._inference
        parts.append(text)
        self._shown += text
        delta = {"type": "text", "text": text}
        chunks.append(_chunk("step_progress", step_type="inference", step_id=step_id, delta=delta))
        return chunks

    def _delta(self, event: Event) -> list[Chunk]:
        text = str(event.data.get("text") or "")
        # the plugin appends a delta only if it is truthy: "" would replace its text with nothing
        return self._text(text, _time(event.id)) if text else []

    def _end_inference(self, at: str) -> list[Chunk]:
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
            "completed_at": at,
        }
        return [_step_complete("inference", step_id, details)]

    def _tool_call(self, event: Event) -> list[Chunk]:
        chunks = self._end_inference(_time(event.id))
        step_id = self._step_id()
        call_id = str(event.data.get("call_id", step_id))
        call = _call(call_id, str(event.data.get("tool", "")), event.data.get("arguments"))
        self._pending[call_id] = (step_id, _moment(event.id), call)
        chunks.append(_chunk("step_start", step_type="tool_execution", step_id=step_id))
        return chunks

    def _tool_result(self, event: Event) -> list[Chunk]:
        data = event.data
        call_id = str(data.get("call_id", ""))
        tool = str(data.get("tool", ""))
        if call_id in self._pending:
            step_id, called_at, call = self._pending.pop(call_id)
        else:  # a result without its call (PersAI keeps every event: a defence only): shown
            step_id, called_at, call = self._step_id(), _moment(event.id), _call(call_id, tool, {})
        if call["tool_name"] == _RANGE_QUERY:
            window = _queried_window(data.get("data")) or _hour_before(call, called_at)
            call = _call(call_id, _RANGE_QUERY, window)
        content = str(data.get("output") or "")
        if data.get("status") == "error" and not content.startswith(TOOL_ERROR_PREFIX):
            content = f"{TOOL_ERROR_PREFIX} {tool}: {content}"
        details = {
            "step_type": "tool_execution",
            "step_id": step_id,
            "turn_id": self.turn_id,
            "tool_calls": [call],
            "tool_responses": [{"call_id": call_id, "tool_name": tool, "content": content}],
            "started_at": called_at.isoformat(),
            "completed_at": _time(event.id),
        }
        self._shown = ""  # the plugin adds a tool message: text goes to a new agent message
        return [_step_complete("tool_execution", step_id, details)]

    def _remember_answer(self, event: Event) -> list[Chunk]:
        self._answer = str(event.data.get("text") or "")
        return []

    def _remember_error(self, event: Event) -> list[Chunk]:
        self._error = str(event.data.get("message") or "")
        return []

    def _status(self, event: Event) -> list[Chunk]:
        status = event.data.get("status")
        if status not in {s.value for s in JobStatus if s.terminal}:
            return []
        at = _time(event.id)
        if status == JobStatus.SUCCEEDED:
            self.finished = True
            return [*self._end_inference(at), self._turn_complete(at, self._answer or "")]
        notice = _CANCELLED if status == JobStatus.CANCELLED else _failed(self._error)
        return self._end_with(notice, at)

    def _end_with(self, notice: str, at: str) -> list[Chunk]:
        """The notice as text after whatever the plugin shows last, then `turn_complete` with
        that whole text: the plugin replaces its last agent message with it, so it stays."""
        self.finished = True
        chunks = self._text(f"\n\n{notice}" if self._shown else notice, at)
        return [*chunks, *self._end_inference(at), self._turn_complete(at, self._shown)]

    def _turn_complete(self, at: str, content: str) -> Chunk:
        turn = {
            "turn_id": self.turn_id,
            "session_id": self.session_id,
            "input_messages": [{"role": "user", "content": self.question}],
            "output_message": _assistant(content),
            "steps": [],
            "started_at": self.started_at or at,
            "completed_at": at,
        }
        return _chunk("turn_complete", turn=turn)


def _failed(reason: str | None) -> str:
    return f"{_FAILED}: {reason}" if reason else f"{_FAILED}."


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


def _queried_window(result: Any) -> dict[str, Any] | None:
    """What the plugin should chart for a range query: the window its result says it was for.

    `execute_range_query` reports `{query, start, end, step_s}` in its result's data (also when
    it failed after resolving the window), `start` and `end` in RFC 3339 UTC (whole seconds,
    exactly the times sent to Prometheus), which JavaScript's `new Date()` parses. None for
    results without a window.
    """
    if not isinstance(result, dict):
        return None
    query, start, end = result.get("query"), result.get("start"), result.get("end")
    if not (isinstance(query, str) and isinstance(start, str) and isinstance(end, str)):
        return None
    window: dict[str, Any] = {"query": query, "start": start, "end": end}
    step_s = result.get("step_s")
    if isinstance(step_s, int | float) and not isinstance(step_s, bool) and step_s > 0:
        window["step"] = _duration(float(step_s))
    return window


def _hour_before(call: Chunk, called_at: datetime) -> dict[str, Any]:
    """A range query that reports no window (its time arguments did not parse, its arguments
    were invalid, it timed out): charted over the hour before the call, the window the tool
    queries without time arguments and the plugin's own default ("1h"), but with both `start`
    and `end` set, so that the plugin never takes its fallback (a ReferenceError)."""
    query = call["arguments"].get("query")
    end = called_at.replace(microsecond=0)
    return {
        "query": query if isinstance(query, str) else "",
        "start": rfc3339(end - DEFAULT_RANGE),
        "end": rfc3339(end),
    }


def _duration(seconds: float) -> str:
    """`30s`, or `1500ms` for a fraction: a Prometheus duration."""
    if seconds.is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _step_complete(step_type: str, step_id: str, details: Chunk) -> Chunk:
    return _chunk("step_complete", step_type=step_type, step_id=step_id, step_details=details)
