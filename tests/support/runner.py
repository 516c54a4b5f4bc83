"""A job runner over a given Redis (fakeredis in the unit tests) with an investigator of the
test's own making in place of the agent: what the runner's unit tests share."""

from __future__ import annotations

from typing import Any, cast

import httpx

from persai.agent import Investigator
from persai.agent.tools import UpstreamSlots
from persai.config import Settings
from persai.jobs import ConversationStore, Job, JobStore
from persai.queue import QueueMessage
from persai.runtime import JobRunner, Services
from persai.runtime.credentials import CredentialsSource

SETTINGS = Settings(auth=False, datasources="prom=http://127.0.0.1:9", model="m")


def runner(redis: Any, investigator: object, worker: str) -> JobRunner:
    """`worker`'s runner; `investigator` plays the agent (it calls no tool)."""
    store = JobStore(redis, retention_s=60)
    http = httpx.AsyncClient()
    services = Services(
        settings=SETTINGS,
        store=store,
        conversations=ConversationStore(redis),
        http=http,
        tools_http=cast(Any, None),  # the investigator calls no tool
        upstream_slots=UpstreamSlots(1),
        investigator=cast(Investigator, investigator),
        credentials=CredentialsSource(SETTINGS, store, http),
    )
    return JobRunner(services, worker_id=worker)


async def stored_job(redis: Any, job_id: str = "j1") -> Job:
    """A queued job of alice's, stored with its conversation as a submission leaves it."""
    store = JobStore(redis, retention_s=60)
    conversation = await ConversationStore(redis).create("alice", title="q")
    job = Job(
        id=job_id,
        owner="alice",
        question="q",
        datasource="/proxy/globaldatasources/prom",
        conversation_id=conversation,
    )
    await store.create(job, None, 60, QueueMessage(tag="t1", raw="{}"))
    return job
