"""Request and response bodies of the native API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from persai.jobs import Job, JobStatus, TimeRange

ID_PATTERN = r"^[0-9a-f]{32}$"
"""What every id PersAI hands out looks like (investigations, conversations, sessions): a UUID4
as 32 lowercase hex digits (`uuid.uuid4().hex`, as the stores make them)."""
ID_EXAMPLE = "3f2b8c1e9d4a4f6b8e7c5a1d2b3c4e5f"


class InvestigationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(
        min_length=1,
        description="What to investigate, in plain words.",
        examples=["Why did checkout latency jump at 14:05?"],
    )
    datasource: str = Field(
        min_length=1,
        max_length=512,
        description="Perses proxy path of a Prometheus datasource.",
        examples=["/proxy/projects/shop/datasources/prometheus"],
    )
    conversation_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Continue this conversation (a follow-up): its id (32 lowercase hex digits).",
    )
    time_range: TimeRange | None = None
    model: str | None = Field(default=None, max_length=256)


class Links(BaseModel):
    self: str
    events: str


class InvestigationAccepted(BaseModel):
    id: str
    status: JobStatus
    conversation_id: str
    links: Links


class InvestigationPage(BaseModel):
    items: list[Job]
    total: int
    limit: int
    offset: int


class ModelList(BaseModel):
    models: list[str]
    default: str | None


class ConversationSummary(BaseModel):
    id: str
    title: str
    created_at: str


class ConversationDetail(ConversationSummary):
    messages: list[dict[str, Any]]


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Invalid request",
        401: "Not authenticated",
        404: "Not found (or not yours)",
        413: "Question too large",
        422: "Malformed request",
        429: "Too many requests (see Retry-After)",
        503: "A dependency is down (see Retry-After)",
    }.items()
}
