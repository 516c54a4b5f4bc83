import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import fakeredis
import pytest

from persai.errors import NotFound, TooManyRequests
from persai.jobs import ConversationStore, keys

pytestmark = pytest.mark.anyio

DAY_S = 86_400


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def conversations(redis: fakeredis.FakeAsyncRedis) -> ConversationStore:
    return ConversationStore(redis, retention_s=30 * DAY_S, per_owner=3)


async def test_a_user_holding_the_limit_is_told_how_to_free_some(
    conversations: ConversationStore,
) -> None:
    first = await conversations.create("alice", "one")
    for title in ("two", "three"):
        await conversations.create("alice", title)
    with pytest.raises(TooManyRequests) as refused:
        await conversations.create("alice", "four")
    message = refused.value.message
    assert "you hold 3 conversations (the limit is 3)" in message
    assert "DELETE /api/v1/conversations/{id}" in message
    assert "DELETE /session/{id}" in message
    assert "in 30 days" in message  # when the least recently used one expires
    assert refused.value.retry_after_s is not None
    assert 29 * DAY_S < refused.value.retry_after_s <= 30 * DAY_S
    await conversations.create("bob", "his own")  # the limit is each user's
    await conversations.delete_for("alice", first)
    await conversations.create("alice", "four")


async def test_a_conversation_expires_a_retention_period_after_its_last_use(
    redis: fakeredis.FakeAsyncRedis, conversations: ConversationStore
) -> None:
    conversation_id = await conversations.create("alice")
    await conversations.append(conversation_id, [{"role": "user", "content": "why?"}])
    for key in (keys.conversation(conversation_id), keys.conversation_messages(conversation_id)):
        assert 29 * DAY_S < await redis.ttl(key) <= 30 * DAY_S
    for key in (keys.conversation(conversation_id), keys.conversation_messages(conversation_id)):
        await redis.expire(key, 100)  # used long ago
    await conversations.touch("alice", conversation_id, "why?")  # a follow-up question
    for key in (keys.conversation(conversation_id), keys.conversation_messages(conversation_id)):
        assert 29 * DAY_S < await redis.ttl(key) <= 30 * DAY_S
    assert 29 * DAY_S < await redis.ttl(keys.user_conversations("alice")) <= 30 * DAY_S
    assert (await conversations.get_for("alice", conversation_id)).title == "why?"


async def test_messages_of_a_conversation_that_is_gone_are_not_kept(
    redis: fakeredis.FakeAsyncRedis, conversations: ConversationStore
) -> None:
    conversation_id = await conversations.create("alice")
    await redis.delete(keys.conversation(conversation_id))  # expired while its job ran
    await conversations.append(conversation_id, [{"role": "assistant", "content": "late"}])
    assert not await redis.exists(keys.conversation_messages(conversation_id))
    with pytest.raises(NotFound):
        await conversations.get_for("alice", conversation_id)


async def test_expired_conversations_leave_the_list_and_the_count(
    redis: fakeredis.FakeAsyncRedis, conversations: ConversationStore
) -> None:
    live = await conversations.create("alice", "live")
    long_ago = time.time() - 31 * DAY_S
    await redis.zadd(keys.user_conversations("alice"), {"old1": long_ago, "old2": long_ago})
    listed = await conversations.list_for("alice", offset=0, limit=10)
    assert [c.id for c in listed] == [live]
    await conversations.create("alice", "second")  # the expired ones do not count
    await conversations.create("alice", "third")
    assert await redis.zcard(keys.user_conversations("alice")) == 3


async def test_the_most_recently_used_is_listed_first(conversations: ConversationStore) -> None:
    first = await conversations.create("alice", "first")
    second = await conversations.create("alice", "second")
    await conversations.touch("alice", first, "again")
    listed = await conversations.list_for("alice", offset=0, limit=10)
    assert [c.id for c in listed] == [first, second]
    assert listed[0].title == "first"  # a name, once given, stays


class ReplicaInBetween(fakeredis.FakeAsyncRedis):
    """A client after whose next command `then` runs (once): what another replica does while
    this one is in the middle of an operation, if that operation takes more than one command."""

    then: Callable[[], Awaitable[object]] | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = await super().execute_command(*args, **options)
        if (then := self.then) is not None:
            self.then = None
            await then()
        return reply


async def _keys_of(redis: fakeredis.FakeAsyncRedis, conversation_id: str) -> list[str]:
    return [key async for key in redis.scan_iter(match=f"*{conversation_id}*")]


async def test_a_job_ending_after_its_conversation_was_deleted_brings_nothing_back(
    redis: fakeredis.FakeAsyncRedis, conversations: ConversationStore
) -> None:
    conversation_id = await conversations.create("alice", "why?")
    await conversations.append(conversation_id, [{"role": "user", "content": "why?"}])
    await conversations.delete_for("alice", conversation_id)  # while its next turn runs
    await conversations.touch("alice", conversation_id, "and now?")  # a follow-up raced it
    await conversations.append(conversation_id, [{"role": "assistant", "content": "late"}])
    assert await _keys_of(redis, conversation_id) == []
    assert await conversations.list_for("alice", offset=0, limit=10) == []
    with pytest.raises(NotFound):
        await conversations.get_for("alice", conversation_id)


async def test_a_delete_landing_in_the_middle_of_an_append_stays_a_delete() -> None:
    server = fakeredis.FakeServer()
    worker = ReplicaInBetween(server=server, decode_responses=True)
    api = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    conversations = ConversationStore(worker)
    conversation_id = await conversations.create("alice", "why?")
    await conversations.append(conversation_id, [{"role": "user", "content": "why?"}])

    async def deleted() -> None:
        await ConversationStore(api).delete_for("alice", conversation_id)

    worker.then = deleted  # after the append's first command, whatever it is
    await conversations.append(conversation_id, [{"role": "assistant", "content": "late"}])
    assert worker.then is None  # the delete did land
    assert await _keys_of(api, conversation_id) == []
    with pytest.raises(NotFound):
        await ConversationStore(api).get_for("alice", conversation_id)
    await worker.aclose()
    await api.aclose()
