"""Conversations: the history a follow-up question sees, kept in Redis (so it survives restarts)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from persai.errors import NotFound
from persai.jobs import keys
from persai.jobs.models import utcnow
from persai.jobs.store import redis_errors

# KEYS: the conversation hash, the owner's conversations. ARGV: id, owner, title, creation time
# (ISO 8601, then Unix s).
_CREATE = """
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'title', ARGV[3], 'created_at', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
"""

# KEYS: the messages list. ARGV: how many to keep, the messages to add.
_APPEND = """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
"""


class Conversation(BaseModel):
    id: str
    owner: str
    title: str
    created_at: str
    messages: list[dict[str, Any]] = Field(default_factory=list)


class ConversationStore:
    """Conversations per user; each holds its messages in order."""

    def __init__(self, redis: aioredis.Redis, *, max_messages: int = 400) -> None:
        self._redis = redis
        self._max_messages = max_messages
        self._create = redis.register_script(_CREATE)
        self._append = redis.register_script(_APPEND)

    async def create(self, owner: str, title: str = "") -> str:
        conversation_id = uuid.uuid4().hex
        now = utcnow()
        names = [keys.conversation(conversation_id), keys.user_conversations(owner)]
        argv = [conversation_id, owner, title[:200], now.isoformat(), repr(now.timestamp())]
        async with redis_errors():
            await self._create(keys=names, args=argv)
        return conversation_id

    async def get_for(
        self, owner: str, conversation_id: str, *, messages: bool = True
    ) -> Conversation:
        """The conversation if `owner` owns it, else NotFound (also for somebody else's)."""
        key = keys.conversation(conversation_id)
        async with redis_errors():
            if messages:
                fields, raw = await asyncio.gather(
                    self._redis.hgetall(key),
                    self._redis.lrange(keys.conversation_messages(conversation_id), 0, -1),
                )
            else:
                fields, raw = await self._redis.hgetall(key), []
        if not fields or fields.get("owner") != owner:
            raise NotFound(f"no conversation {conversation_id!r}")
        return Conversation(
            id=conversation_id,
            owner=owner,
            title=fields.get("title", ""),
            created_at=fields.get("created_at", ""),
            messages=[json.loads(item) for item in raw],
        )

    async def list_for(self, owner: str, *, offset: int, limit: int) -> list[Conversation]:
        async with redis_errors():
            ids = cast(
                list[str],
                await self._redis.zrevrange(
                    keys.user_conversations(owner), offset, offset + limit - 1
                ),
            )
        found = []
        for conversation_id in ids:
            try:
                found.append(await self.get_for(owner, conversation_id, messages=False))
            except NotFound:
                continue
        return found

    async def delete_for(self, owner: str, conversation_id: str) -> None:
        await self.get_for(owner, conversation_id, messages=False)
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                keys.conversation(conversation_id), keys.conversation_messages(conversation_id)
            )
            pipe.zrem(keys.user_conversations(owner), conversation_id)
            await pipe.execute()

    async def touch(self, owner: str, conversation_id: str, title: str) -> None:
        async with redis_errors():
            await self._redis.zadd(
                keys.user_conversations(owner), {conversation_id: utcnow().timestamp()}
            )
            key = keys.conversation(conversation_id)
            if not await self._redis.hget(key, "title"):  # a session is named by its first question
                await self._redis.hset(key, "title", title[:200])

    async def append(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        """Add a finished turn's messages; the oldest go once the history is full."""
        if not messages:
            return
        key = keys.conversation_messages(conversation_id)
        argv = [str(self._max_messages), *(json.dumps(message) for message in messages)]
        async with redis_errors():
            await self._append(keys=[key], args=argv)
