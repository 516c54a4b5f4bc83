"""The native API: investigations, their event streams, conversations."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from persai.alerts.listing import AlertFilters
from persai.errors import NotFound
from persai.jobs import Job, JobStatus, utcnow
from persai.jobs.submission import Question
from persai.server.deps import CurrentUser, Limit, Offset, State
from persai.server.event_stream import EventStream
from persai.server.schemas import (
    ERROR_RESPONSES,
    ID_EXAMPLE,
    ID_PATTERN,
    ConversationDetail,
    ConversationSummary,
    InvestigationAccepted,
    InvestigationPage,
    InvestigationRequest,
    Links,
    ModelList,
)
from persai.server.state import AppState
from persai.server.stream_slots import holding
from persai.server.streams import Lagged

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

HEARTBEAT_S = 15
_ID = re.compile(ID_PATTERN)


def path_id(name: str, what: str) -> Callable[..., Awaitable[str]]:
    """A dependency reading the id in path parameter `name`: one that is not shaped like the
    ids PersAI makes names nothing, so it is the same 404 as an unknown one ("no {what} ...",
    as the stores say) and never reaches Redis, where `{id}:events` would name another key."""

    # a default, not `Annotated`: the annotations of this module are strings, and those could
    # not name `name` and `what` when FastAPI reads them
    async def checked(
        value: str = Path(
            alias=name,
            description=f"The {what}'s id (32 lowercase hex digits).",
            examples=[ID_EXAMPLE],
            json_schema_extra={"pattern": ID_PATTERN},
        ),
    ) -> str:
        if not _ID.fullmatch(value):
            raise NotFound(f"no {what} {value!r}")
        return value

    return checked


JobId = Annotated[str, Depends(path_id("job_id", "investigation"))]
ConversationId = Annotated[str, Depends(path_id("conversation_id", "conversation"))]


@router.post("/investigations", status_code=202, response_model=InvestigationAccepted)
async def submit(
    body: InvestigationRequest, user: CurrentUser, state: State
) -> InvestigationAccepted:
    """Queue an investigation; it runs in a worker, and its progress can be polled or streamed.

    A new conversation is started unless `conversation_id` names one of the caller's."""
    asked = Question(
        question=body.question,
        datasource=body.datasource,
        conversation_id=body.conversation_id,
        time_range=body.time_range,
        model=body.model,
    )
    job = await state.submissions.submit(user.user, user.credentials, asked)
    return InvestigationAccepted(
        id=job.id,
        status=job.status,
        conversation_id=job.conversation_id,
        links=Links(
            self=f"/api/v1/investigations/{job.id}",
            events=f"/api/v1/investigations/{job.id}/events",
        ),
    )


@router.get("/models", response_model=ModelList)
async def list_models(user: CurrentUser, state: State) -> ModelList:
    """The models a caller may choose (`model` of a submission), and the default one."""
    models = await state.models()
    return ModelList(models=models, default=state.settings.model or next(iter(models), None))


@router.get("/investigations", response_model=InvestigationPage)
async def list_investigations(
    user: CurrentUser,
    state: State,
    request: Request,
    filters: Annotated[AlertFilters, Query()],
    limit: Limit = 20,
    offset: Offset = 0,
) -> InvestigationPage:
    """The caller's investigations, newest first; `source=alert`: the alert investigations
    the caller may read (by alert name, status, creation time)."""
    if filters.source == "alert":
        lister = getattr(request.app.state, "alert_lister", None)
        if lister is None:
            return InvestigationPage(items=[], total=0, limit=limit, offset=offset)
        found: list[Job] = await lister(request, state, user, filters)
        page = found[offset : offset + limit]
        return InvestigationPage(items=page, total=len(found), limit=limit, offset=offset)
    jobs, total = await state.store.list_for(user.user, offset=offset, limit=limit)
    return InvestigationPage(items=jobs, total=total, limit=limit, offset=offset)


@router.get(
    "/investigations/{job_id}",
    response_class=Response,
    responses={200: {"model": Job, "description": "The investigation."}},
)
async def get_investigation(
    user: CurrentUser, job_id: JobId, state: State, request: Request
) -> Response:
    """Status, steps (each tool call with what the model saw), answer, usage.

    Polled often: the stored JSON is served as it is, without decoding it. An alert
    investigation is shown to whoever may read it (`persai.alerts.access`).
    """
    try:
        document = await state.store.document_for(user.user, job_id)
    except NotFound:
        reader = getattr(request.app.state, "alert_reader", None)
        if reader is None:
            raise
        document = await reader(request, state, user, job_id)
    return Response(document, media_type="application/json")


@router.post("/investigations/{job_id}/cancel", response_model=Job)
async def cancel(user: CurrentUser, job_id: JobId, state: State) -> Job:
    """Cancel a queued or running investigation; cancelling a finished one changes nothing."""
    job = await state.store.get_for(user.user, job_id)
    if job.status.terminal:
        return job
    await state.store.request_cancel(job_id)
    if job.status is JobStatus.QUEUED:
        job.finished_at = utcnow()
        await state.store.transition(job, JobStatus.CANCELLED, (JobStatus.QUEUED,))
    return await state.store.get_for(user.user, job_id)


@router.get(
    "/investigations/{job_id}/events",
    response_class=EventStream,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The job's events."}},
)
async def events(
    user: CurrentUser,
    job_id: JobId,
    state: State,
    request: Request,
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> EventStream:
    """Server-Sent Events: the whole history first, then live; `Last-Event-ID` resumes.

    A user follows at most `PERSAI_STREAMS_PER_USER` streams at once (429 past it).
    """
    await state.store.get_for(user.user, job_id)
    after = await state.events.resume_point(job_id, last_event_id)
    slot = await state.events.slots.claim(user.user)
    return EventStream(holding(slot, _stream(state, job_id, after)), ping_s=HEARTBEAT_S)


async def _stream(state: AppState, job_id: str, after: str) -> AsyncIterator[bytes]:
    """The job's events after `after`, until `done` (at once if it was already sent), each
    encoded once for all its subscribers. A subscriber too far behind is let go: its client
    reconnects with `Last-Event-ID` and resumes where it was."""
    async with contextlib.aclosing(state.events.frames(job_id, after)) as frames:
        try:
            async for frame in frames:
                yield frame
        except Lagged:
            log.info("a subscriber of job %s fell behind; its stream ends", job_id)


@router.get("/conversations", response_model=list[ConversationSummary])
async def list_conversations(
    user: CurrentUser, state: State, limit: Limit = 20, offset: Offset = 0
) -> list[ConversationSummary]:
    found = await state.conversations.list_for(user.user, offset=offset, limit=limit)
    return [ConversationSummary(id=c.id, title=c.title, created_at=c.created_at) for c in found]


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(
    user: CurrentUser, conversation_id: ConversationId, state: State
) -> ConversationDetail:
    c = await state.conversations.get_for(user.user, conversation_id)
    return ConversationDetail(id=c.id, title=c.title, created_at=c.created_at, messages=c.messages)


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    user: CurrentUser, conversation_id: ConversationId, state: State
) -> None:
    await state.conversations.delete_for(user.user, conversation_id)
