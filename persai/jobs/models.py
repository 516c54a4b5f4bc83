"""What PersAI stores about an investigation, and the events it emits while one runs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from persai.timebounds import MAX_DURATION, bounded_duration, bounded_time


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
    """The dashboard's time range: absolute (`start`, `end`) or relative to now (`duration`).

    Times are UTC (a time without a zone is taken as UTC), from 1970 to 2200; a duration is at
    most 3650 days.
    """

    # The bounds are persai.timebounds's, which the tools share: whatever range was accepted
    # here, they can compute with it.
    model_config = ConfigDict(extra="forbid")

    start: datetime | None = Field(default=None, description="UTC when it names no zone.")
    end: datetime | None = Field(default=None, description="UTC when it names no zone.")
    duration: str | None = Field(
        default=None,
        pattern=r"^\d+[smhdw]$",
        max_length=16,
        description=f"Up to {MAX_DURATION.days} days.",
        examples=["1h"],
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, moment: datetime | None) -> datetime | None:
        return None if moment is None else bounded_time(moment, moment.isoformat())

    @field_validator("duration")
    @classmethod
    def _bounded(cls, duration: str | None) -> str | None:
        if duration is not None:
            seconds = int(duration[:-1]) * _UNIT_SECONDS[duration[-1]]
            bounded_duration(seconds, duration)  # ValueError past MAX_DURATION
            if seconds == 0:
                raise ValueError("the duration must be longer than 0")
        return duration

    @model_validator(mode="after")
    def _one_kind(self) -> TimeRange:
        absolute = self.start is not None and self.end is not None
        if absolute == (self.duration is not None):
            raise ValueError("give either start and end, or duration")
        if absolute and self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
"""Seconds per unit of a `TimeRange.duration`."""


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


class Evidence(BaseModel):
    """A query that supported the answer: where it looked, over which window, what stood out."""

    tool: str
    datasource: str
    query: str
    kind: Literal["range", "instant"]
    start: datetime
    """RFC 3339 UTC; for an instant query the evaluation time, as is `end`."""
    end: datetime
    step_seconds: float | None = None
    findings: list[str] = Field(default_factory=list)


class AlertRef(BaseModel):
    """The Alertmanager group an investigation was started for (see `persai.alerts`)."""

    receiver: str
    group_key: str
    alertname: str
    status: Literal["firing", "resolved"] = "firing"
    fingerprints: list[str] = Field(default_factory=list)
    starts_at: datetime | None = None
    resolved_at: datetime | None = None
    notifications: list[dict[str, Any]] = Field(default_factory=list)
    """Each delivery attempt: destination name, attempt, outcome, when."""


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
    evidence: list[Evidence] = Field(default_factory=list)
    """The queries that supported the answer, set when the job ends (`persai.jobs.evidence`)."""
    source: Literal["user", "alert"] = "user"
    alert: AlertRef | None = None


EventName = Literal[
    "status", "message_delta", "tool_call", "tool_result", "answer", "error", "done"
]


class Event(BaseModel):
    """One entry of a job's event stream; `id` is the Redis Stream entry id."""

    id: str
    event: EventName
    data: dict[str, Any]
