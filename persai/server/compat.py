"""The compatibility API that serves the existing PersAI Perses plugin (`@inecas/persai`) unchanged.

The plugin's client subclasses the npm `llama-stack-client` 0.2 SDK's `APIClient`: its base URL
is the Perses global variable `persai_url`, its fetch sends `credentials: "include"` (so the
browser sends the Perses cookies), it gives up on a request whose response headers take longer
than 30 s, and it retries up to 3 times on connection errors and on 408, 409, 429 and 5xx. It
sends, at the root of `persai_url` (no `/v1` prefix, no agent id):

    POST   /session                                   no body      -> 201 {"session_id"}
    POST   /session/{id}/turn?datasource_path=<path>  {"message"}  -> the turn, streamed
    DELETE /session/{id}

`GET /sessions` is served too, as the plugin's original back end did. Sessions are PersAI
conversations: they belong to the caller and live in Redis. A turn is an investigation in the
session's conversation, streamed as Llama Stack 0.2 agent-turn chunks (see `compat_frames`).
A retried turn (same user, session, message and datasource within TURN_RETRY_WINDOW_S)
re-attaches to the job the first attempt started and streams it again from its beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from persai.datasources import MAX_PATH_LENGTH, parse_datasource
from persai.errors import PersAIError
from persai.jobs.submission import Question
from persai.jobs.turns import TURN_RETRY_WINDOW_S
from persai.server.auth import Principal
from persai.server.compat_frames import TurnFrames
from persai.server.deps import CurrentUser, Limit, Offset, State
from persai.server.investigations import path_id
from persai.server.schemas import ERROR_RESPONSES
from persai.server.state import AppState
from persai.server.stream_slots import holding

__all__ = ["TURN_RETRY_WINDOW_S", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["Perses plugin (compatibility)"], responses=ERROR_RESPONSES)

ATTACH_TRIES, ATTACH_WAIT_S = 10, 0.2
"""How often, and how long apart (s), a turn's stream looks again for a job not stored yet."""


class SessionCreate(BaseModel):
    """What the SDK's `agents.session.create` sends; the plugin sends no body at all."""

    model_config = ConfigDict(extra="ignore")

    session_name: str = Field(default="", max_length=200)


class SessionCreated(BaseModel):
    session_id: str


class Session(BaseModel):
    """A session as Llama Stack 0.2 lists them (`turns` stay empty: see the native API)."""

    session_id: str
    session_name: str
    started_at: str
    turns: list[dict[str, object]] = Field(default_factory=list)


class TurnRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    message: str = Field(min_length=1, description="The question, in plain words.")


SessionId = Annotated[str, Depends(path_id("session_id", "conversation"))]
"""A session id from the path: a conversation's (a malformed one is the same 404 as unknown)."""
DatasourcePath = Annotated[
    str,
    Query(
        max_length=MAX_PATH_LENGTH,
        description="Perses proxy path of a Prometheus datasource.",
        examples=["/proxy/projects/shop/datasources/prometheus"],
    ),
]


@router.post("/session", status_code=201, response_model=SessionCreated)
async def create_session(
    user: CurrentUser, state: State, body: SessionCreate | None = None
) -> SessionCreated:
    """Start a chat session (a conversation of the caller's); 429 when the caller holds
    `PERSAI_CONVERSATIONS_PER_USER` of them already."""
    title = body.session_name if body else ""
    return SessionCreated(session_id=await state.conversations.create(user.user, title=title))


@router.get("/sessions", response_model=list[Session])
async def list_sessions(
    user: CurrentUser, state: State, limit: Limit = 100, offset: Offset = 0
) -> list[Session]:
    """The caller's sessions, most recently used first."""
    found = await state.conversations.list_for(user.user, offset=offset, limit=limit)
    return [Session(session_id=c.id, session_name=c.title, started_at=c.created_at) for c in found]


@router.delete("/session/{session_id}", status_code=204)
async def delete_session(user: CurrentUser, session_id: SessionId, state: State) -> None:
    """Delete a session and its history; another user's session is a 404."""
    await state.conversations.delete_for(user.user, session_id)


@router.post(
    "/session/{session_id}/turn",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The turn's chunks."}},
)
async def create_turn(
    user: CurrentUser,
    session_id: SessionId,
    body: TurnRequest,
    datasource_path: DatasourcePath,
    state: State,
) -> EventSourceResponse:
    """Ask a question in a session; its investigation streams as Llama Stack 0.2 turn chunks."""
    datasource = parse_datasource(datasource_path, state.settings.perses_api_prefix).path
    await state.conversations.get_for(user.user, session_id, messages=False)
    slot = await state.events.slots.claim(user.user)  # the turn streams like any job
    try:
        job_id = await _turn_job(state, user, session_id, body.message, datasource)
    except BaseException:
        await slot.release()
        raise
    frames = TurnFrames(turn_id=job_id, session_id=session_id, question=body.message)
    heartbeat_s = state.settings.compat_heartbeat_s
    stream = holding(slot, _stream(state, job_id, frames))
    return EventSourceResponse(stream, ping=heartbeat_s, sep="\n")


async def _turn_job(
    state: AppState, user: Principal, session_id: str, message: str, datasource: str
) -> str:
    """The job of this turn: the one a first attempt started moments ago, else a new one."""

    async def submit(job_id: str) -> None:
        asked = Question(
            question=message, datasource=datasource, conversation_id=session_id, job_id=job_id
        )
        await state.submissions.submit(user.user, user.credentials, asked)

    return await state.turns.job_for(user.user, session_id, message, datasource, submit)


async def _stream(
    state: AppState, job_id: str, frames: TurnFrames
) -> AsyncIterator[ServerSentEvent]:
    """The turn's chunks, from the job's first event on, until it ends (or fails: then with the
    reason as the turn's last text, see `compat_frames`)."""
    for chunk in frames.start():
        yield _sse(chunk)
    try:
        async for chunk in _chunks(state, job_id, frames):
            yield _sse(chunk)
    except PersAIError as exc:
        log.warning("turn stream of job %s ended early: %s", job_id, exc.message)
        for chunk in frames.fail(exc.message):
            yield _sse(chunk)
        return
    if not frames.finished:  # the job went away before its end
        for chunk in frames.fail("it was not found (expired, or never queued)"):
            yield _sse(chunk)


async def _chunks(
    state: AppState, job_id: str, frames: TurnFrames
) -> AsyncIterator[dict[str, object]]:
    """The job's events as chunks, until the turn is finished or the job is gone."""
    after = "0"
    for _ in range(ATTACH_TRIES):
        # an async generator: closing it at once unsubscribes from the job
        async with contextlib.aclosing(state.events.follow_through(job_id, after)) as events:
            async for event in events:
                after = event.id
                for chunk in frames.feed(event):
                    yield chunk
                if frames.finished:
                    return
        if after != "0":
            return  # the job was followed, then went away
        # A retry can come before the first attempt has stored the job: wait a moment.
        await asyncio.sleep(ATTACH_WAIT_S)


def _sse(chunk: dict[str, object]) -> ServerSentEvent:
    """A `data:` frame only: the SDK parses every frame's data as JSON and ignores comments."""
    return ServerSentEvent(data=json.dumps(chunk), sep="\n")
