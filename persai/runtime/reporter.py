"""Turns what the loop reports into job events and record updates."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from persai.errors import TooManyEvents
from persai.jobs import EventName, Job, JobStore, Step

# Text deltas are batched: one event per this many seconds at most, so a model streaming
# tokens one by one does not write one Redis entry per token.
DELTA_FLUSH_S = 0.05
# Events kept for the end of a job (answer, error, status, done) beyond the per-job limit.
_RESERVED_EVENTS = 8


class JobReporter:
    """The Reporter of one running job: events in the job's stream, steps in its record.

    The job's `steps` and `usage` are the very objects the loop fills in, so saving the job
    saves the progress. Every write is fenced by the job's attempt: once another worker took
    the job over, the next one raises `Superseded` and stores nothing.
    """

    def __init__(self, store: JobStore, job: Job, *, max_events: int) -> None:
        self._store = store
        self._job = job
        self._events_left = max_events - _RESERVED_EVENTS
        self._pending: list[str] = []
        self._last_flush = 0.0
        self._lock = asyncio.Lock()

    async def text(self, delta: str) -> None:
        self._pending.append(delta)
        if time.monotonic() - self._last_flush >= DELTA_FLUSH_S:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            text, self._pending = "".join(self._pending), []
            self._last_flush = time.monotonic()
            await self._emit("message_delta", {"text": text})

    async def tool_call(self, step: Step) -> None:
        await self.flush()
        await self._emit(
            "tool_call",
            {"call_id": step.call_id, "tool": step.tool, "arguments": step.arguments},
            save=True,
        )

    async def tool_result(self, step: Step) -> None:
        await self._emit(
            "tool_result",
            {
                "call_id": step.call_id,
                "tool": step.tool,
                "status": step.status.value,
                "output": step.output,
                "data": step.data,
                "duration_ms": step.duration_ms,
            },
            save=True,
        )

    async def _emit(self, event: EventName, data: dict[str, Any], *, save: bool = False) -> None:
        """Append an event; with `save`, store the record's progress in the same step."""
        if self._events_left <= 0:
            raise TooManyEvents(
                "the investigation produced more events than the limit "
                "(PERSAI_MAX_EVENTS_PER_JOB); it was stopped"
            )
        self._events_left -= 1
        attempt = self._job.attempts
        if save:
            await self._store.save_and_emit(self._job, event, data, attempt=attempt)
        else:
            await self._store.emit(self._job.id, event, data, attempt=attempt)
