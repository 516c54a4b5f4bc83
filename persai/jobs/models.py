"""What PersAI stores about an investigation, and the events it emits while one runs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class TimeRange(BaseModel):
    """The dashboard's time range: absolute (`start`, `end`) or relative to now (`duration`)."""

    model_config = ConfigDict(extra="forbid")

    start: datetime | None = None
    end: datetime | None = None
    duration: str | None = Field(default=None, pattern=r"^\d+[smhdw]$", examples=["1h"])

    @model_validator(mode="after")
    def _one_kind(self) -> TimeRange:
        absolute = self.start is not None and self.end is not None
        if absolute == (self.duration is not None):
            raise ValueError("give either start and end, or duration")
        if absolute and self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class StepStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"


class Step(BaseModel):
    """One tool call: what the model asked, and what it was shown."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    status: StepStatus = StepStatus.RUNNING
    output: str | None = None
    data: dict[str, Any] | None = None
    """Structure a UI can draw from (query, time range, step), beside the text the model saw."""
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration_ms: float | None = None


class Usage(BaseModel):
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    model_time_ms: float = 0.0
    tool_time_ms: float = 0.0


class Job(BaseModel):
    """An investigation as stored in Redis and shown by `GET /api/v1/investigations/{id}`."""

    id: str
    owner: str
    status: JobStatus = JobStatus.QUEUED
    question: str
    datasource: str
    conversation_id: str
    model: str | None = None
    time_range: TimeRange | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    answer: str | None = None
    error: str | None = None
    steps: list[Step] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    attempts: int = 0


EventName = Literal[
    "status", "message_delta", "tool_call", "tool_result", "answer", "error", "done"
]


class Event(BaseModel):
    """One entry of a job's event stream; `id` is the Redis Stream entry id."""

    id: str
    event: EventName
    data: dict[str, Any]
