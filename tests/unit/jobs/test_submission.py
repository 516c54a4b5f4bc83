"""Submissions: admitted and stored in one Redis round trip, refused without writing anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest

from persai.config import Settings
from persai.errors import (
    NotFound,
    ServiceUnavailable,
    StoreUnavailable,
    TooManyRequests,
    UnknownModel,
)
from persai.jobs import ConversationStore, JobStatus, JobStore, keys
from persai.jobs.submission import Question, Submissions
from persai.queue import QUEUE, Publisher, create_celery

pytestmark = pytest.mark.anyio

DATASOURCE = "/proxy/globaldatasources/prom"


class CountingRedis(fakeredis.FakeAsyncRedis):
    """fakeredis that counts the commands sent to it (each one a round trip: no pipelining)."""

    commands: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]))
        return await super().execute_command(*args, **options)


@pytest.fixture
async def redis() -> AsyncIterator[CountingRedis]:
    client = CountingRedis(decode_responses=True)
    client.commands = []
    yield client
    await client.aclose()


def submissions(redis: fakeredis.FakeAsyncRedis, **limits: Any) -> Submissions:
    settings = Settings(auth=False, model="m", perses_api_url="http://perses:8080", **limits)
    celery = create_celery(settings, "redis://127.0.0.1:1")  # builds messages, never connects
    conversations = ConversationStore(redis, per_owner=settings.conversations_per_user)

    async def models() -> list[str]:
        return ["m", "other"]

    return Submissions(
        redis,
        settings,
        store=JobStore(redis, retention_s=60),
        conversations=conversations,
        queue=Publisher(celery),
        sealer=None,
        models=models,
    )


async def test_a_submission_is_one_round_trip_that_queues_its_job_in_a_new_conversation(
    redis: CountingRedis,
) -> None:
    service = submissions(redis)
    await service.submit("alice", None, Question("warm-up", DATASOURCE))  # loads the script
    redis.commands.clear()

    job = await service.submit("alice", None, Question("Why is checkout slow?", DATASOURCE))

    assert redis.commands == ["EVALSHA"]
    stored = await JobStore(redis, retention_s=60).get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.QUEUED
    assert await redis.llen(QUEUE) == 2  # both jobs' messages
    conversation = await ConversationStore(redis).get_for("alice", job.conversation_id)
    assert conversation.title == "Why is checkout slow?"


async def test_a_follow_up_touches_its_conversation_and_another_users_is_not_found(
    redis: CountingRedis,
) -> None:
    service = submissions(redis)
    conversation_id = await ConversationStore(redis).create("alice")  # untitled
    asked = Question("and now?", DATASOURCE, conversation_id=conversation_id, model="other")

    job = await service.submit("alice", None, asked)
    assert (job.conversation_id, job.model) == (conversation_id, "other")
    assert await redis.hget(keys.conversation(conversation_id), "title") == "and now?"

    with pytest.raises(NotFound, match="no conversation"):
        await service.submit("bob", None, asked)
    assert await redis.scard(keys.user_active("bob")) == 0
    with pytest.raises(UnknownModel):
        await service.submit("alice", None, Question("q", DATASOURCE, model="nope"))


async def test_a_submission_past_a_limit_stores_no_job_and_starts_no_conversation(
    redis: CountingRedis,
) -> None:
    service = submissions(redis, max_running_per_user=1, submissions_per_minute=3)
    await service.submit("alice", None, Question("first", DATASOURCE))

    with pytest.raises(TooManyRequests, match="1 unfinished investigations"):
        await service.submit("alice", None, Question("second", DATASOURCE))
    assert await redis.zcard(keys.user_conversations("alice")) == 1
    assert await redis.llen(QUEUE) == 1

    with pytest.raises(TooManyRequests, match="unfinished"):
        await service.submit("alice", None, Question("third", DATASOURCE))
    with pytest.raises(TooManyRequests, match="submissions in a minute") as refused:
        await service.submit("alice", None, Question("fourth", DATASOURCE))
    assert 1 <= refused.value.retry_after_s <= 60  # the rest of the minute


async def test_a_full_queue_and_too_many_conversations_are_refused(redis: CountingRedis) -> None:
    with pytest.raises(ServiceUnavailable, match="the queue is full"):
        await submissions(redis, max_queue_depth=0).submit("alice", None, Question("q", DATASOURCE))

    service = submissions(redis, conversations_per_user=1)
    await service.submit("alice", None, Question("q", DATASOURCE))
    with pytest.raises(TooManyRequests, match="you hold 1 conversations"):
        await service.submit("alice", None, Question("again", DATASOURCE))
    assert await redis.scard(keys.user_active("alice")) == 1


async def test_a_submission_retried_with_its_job_id_writes_nothing_twice(
    redis: CountingRedis,
) -> None:
    service = submissions(redis)
    conversation_id = await ConversationStore(redis).create("alice", title="t")
    asked = Question("q", DATASOURCE, conversation_id=conversation_id, job_id="a" * 32)
    await service.submit("alice", None, asked)
    await service.submit("alice", None, asked)  # its reply was lost: the client sent it again
    assert await redis.llen(QUEUE) == 1
    assert await redis.xlen(keys.events("a" * 32)) == 1


async def test_redis_down_is_said_before_a_model_that_cannot_be_chosen() -> None:
    down = fakeredis.FakeAsyncRedis(decode_responses=True, connected=False)
    service = submissions(down)
    with pytest.raises(StoreUnavailable, match="Redis is unreachable"):
        await service.submit("alice", None, Question("q", DATASOURCE, model="nope"))
