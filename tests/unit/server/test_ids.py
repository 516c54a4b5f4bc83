"""Ids in paths: one that is not shaped like the ids PersAI makes is the same 404 as an unknown one.

`{id}:events` named the job's event stream in Redis (a key of another type): a 500, and an oracle
of which jobs exist. The routes run in-process over fakeredis with the real stores.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace

import fakeredis
import httpx
import pytest
from fastapi import FastAPI

from persai.config import Settings
from persai.errors import Unauthenticated, install
from persai.jobs import ConversationStore, Job, JobStore
from persai.server import compat, investigations
from persai.server.auth import ANONYMOUS
from persai.server.deps import get_principal, get_state

pytestmark = pytest.mark.anyio

JOB_ROUTES = [
    ("GET", "/api/v1/investigations/{}"),
    ("POST", "/api/v1/investigations/{}/cancel"),
    ("GET", "/api/v1/investigations/{}/events"),
]
CONVERSATION_ROUTES = [
    ("GET", "/api/v1/conversations/{}"),
    ("DELETE", "/api/v1/conversations/{}"),
    ("DELETE", "/session/{}"),
    ("POST", "/session/{}/turn?datasource_path=%2Fproxy%2Fglobaldatasources%2Fprom"),
]


def malformed(real: str) -> dict[str, str]:
    """Ids that are not ids, made from a real one: as written in the URL -> as a route reads it."""
    return {
        f"{real}:events": f"{real}:events",  # another Redis key of the same job
        f"{real}:messages": f"{real}:messages",
        f"{real}:credentials": f"{real}:credentials",
        real.upper(): real.upper(),
        real[:-1]: real[:-1],
        real + "0": real + "0",
        f"{real}%0A": f"{real}\n",
        "nope": "nope",
        "%2A": "*",
    }


class Harness:
    def __init__(
        self, app: FastAPI, client: httpx.AsyncClient, job_id: str, conversation_id: str
    ) -> None:
        self.app, self.client = app, client
        self.job_id, self.conversation_id = job_id, conversation_id

    async def ask(self, method: str, route: str, raw_id: str) -> httpx.Response:
        body = {"message": "q"} if "/turn" in route else None
        return await self.client.request(method, route.format(raw_id), json=body)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    store, conversations = JobStore(redis, retention_s=3600), ConversationStore(redis)
    conversation_id = await conversations.create(ANONYMOUS.user, title="q")
    await conversations.append(conversation_id, [{"role": "user", "content": "q"}])
    job = Job(
        id=uuid.uuid4().hex,
        owner=ANONYMOUS.user,
        question="q",
        datasource="/proxy/globaldatasources/prom",
        conversation_id=conversation_id,
    )
    await store.create(job, None, 60)
    state = SimpleNamespace(
        settings=Settings(auth=False), redis=redis, store=store, conversations=conversations
    )
    app = FastAPI()
    install(app)
    app.include_router(investigations.router)
    app.include_router(compat.router)
    app.dependency_overrides[get_state] = lambda: state
    app.dependency_overrides[get_principal] = lambda: ANONYMOUS
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://persai") as client:
        yield Harness(app, client, job.id, conversation_id)
    await redis.aclose()


@pytest.mark.parametrize(("method", "route"), JOB_ROUTES + CONVERSATION_ROUTES)
async def test_an_id_that_is_not_an_id_is_the_same_404_as_an_unknown_one(
    harness: Harness, method: str, route: str
) -> None:
    what, real = (
        ("investigation", harness.job_id)
        if (method, route) in JOB_ROUTES
        else ("conversation", harness.conversation_id)
    )
    unknown = uuid.uuid4().hex
    answer = await harness.ask(method, route, unknown)
    assert answer.status_code == 404
    assert answer.json() == {"error": {"type": "not_found", "message": f"no {what} {unknown!r}"}}

    for written, read in malformed(real).items():
        answer = await harness.ask(method, route, written)
        assert answer.status_code == 404, (written, answer.text)
        assert answer.json() == {"error": {"type": "not_found", "message": f"no {what} {read!r}"}}


async def test_malformed_ids_leave_the_real_ones_alone(harness: Harness) -> None:
    for written in malformed(harness.conversation_id):
        await harness.ask("DELETE", "/api/v1/conversations/{}", written)
        await harness.ask("POST", "/api/v1/investigations/{}/cancel", written)

    conversation = await harness.client.get(f"/api/v1/conversations/{harness.conversation_id}")
    job = await harness.client.get(f"/api/v1/investigations/{harness.job_id}")
    assert conversation.status_code == 200
    assert (job.status_code, job.json()["status"]) == (200, "queued")


async def test_a_follow_up_naming_a_conversation_id_that_is_not_one_is_refused(
    harness: Harness,
) -> None:
    body = {
        "question": "and now?",
        "datasource": "/proxy/globaldatasources/prom",
        "conversation_id": f"{harness.conversation_id}:messages",
    }
    answer = await harness.client.post("/api/v1/investigations", json=body)

    assert answer.status_code == 422
    assert answer.json()["error"]["type"] == "validation_error"
    assert "conversation_id" in answer.json()["error"]["message"]


async def test_the_caller_is_authenticated_before_the_id_is_looked_at(harness: Harness) -> None:
    def refuse() -> None:
        raise Unauthenticated("not signed in")

    harness.app.dependency_overrides[get_principal] = refuse
    for method, route in JOB_ROUTES + CONVERSATION_ROUTES:
        answer = await harness.ask(method, route, "nope")
        assert answer.status_code == 401, (method, route, answer.text)
