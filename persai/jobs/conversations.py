"""Conversations: the history a follow-up question sees, kept in Redis (so it survives restarts)."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from persai.errors import NotFound, TooManyRequests
from persai.jobs import keys
from persai.jobs.models import utcnow
from persai.jobs.scripts import ScriptCall
from persai.jobs.store import redis_errors

# Each script's first write is one that Redis refuses when it is out of memory (a script that
# has written is let finish: a first write that frees memory would let the others through).

# `create_conversation(k, a)`, k: the conversation hash, the owner's conversations; a: id,
# owner, title, creation time (ISO 8601, then Unix s), the cutoff (Unix s: conversations last
# used before it have expired), the retention (s), how many the owner may hold. Returns nothing,
# or, when the owner holds that many already, how many and when the least recently used one was
# last used.
CREATE_CONVERSATION = """
local function create_conversation(k, a)
  local held = redis.call('ZCOUNT', k[2], a[6], '+inf')
  if held >= tonumber(a[8]) then
    local oldest = redis.call('ZRANGEBYSCORE', k[2], a[6], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return {held, oldest[2]}
  end
  redis.call('HSET', k[1], 'owner', a[2], 'title', a[3], 'created_at', a[4])
  redis.call('EXPIRE', k[1], a[7])
  redis.call('ZADD', k[2], a[5], a[1])
  redis.call('ZREMRANGEBYSCORE', k[2], '-inf', '(' .. a[6])
  redis.call('EXPIRE', k[2], a[7])
  return false
end
"""

# `touch_conversation(k, a)`, k: the conversation hash, its messages, the owner's
# conversations; a: id, now (Unix s), the cutoff (Unix s), the retention (s), the title it gets
# unless it has one. A use: the conversation and its messages live a retention period from
# now, and it is listed first.
TOUCH_CONVERSATION = """
local function touch_conversation(k, a)
  if redis.call('EXISTS', k[1]) == 0 then return 0 end
  redis.call('ZADD', k[3], a[2], a[1])
  redis.call('ZREMRANGEBYSCORE', k[3], '-inf', '(' .. a[3])
  redis.call('EXPIRE', k[3], a[4])
  local title = redis.call('HGET', k[1], 'title')
  if not title or title == '' then redis.call('HSET', k[1], 'title', a[5]) end
  redis.call('EXPIRE', k[1], a[4])
  redis.call('EXPIRE', k[2], a[4])
  return 1
end
"""

# KEYS: the conversation hash, its messages. ARGV: how many to keep, the messages to add.
# The messages expire with the conversation; nothing is added to one that is gone (expired, or
# deleted while the job that ends here ran). The check and the write are one script: a delete
# cannot land between them, so a deleted conversation stays deleted.
_APPEND = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 2))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""


def _span(seconds: float) -> str:
    """A duration as people say it: "3 days", "5 hours", "12 minutes", "40 s"."""
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{round(seconds / size)} {unit}"
    return f"{max(1, round(seconds))} s"


class Conversation(BaseModel):
    id: str
    owner: str
    title: str
    created_at: str
    messages: list[dict[str, Any]] = Field(default_factory=list)


class ConversationStore:
    """Conversations per user; each holds its messages in order.

    A user holds at most `per_owner` conversations; each is deleted `retention_s` after its last
    use (its creation, or a question asked in it).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        max_messages: int = 400,
        retention_s: int = 30 * 86_400,
        per_owner: int = 200,
    ) -> None:
        self._redis = redis
        self._max_messages = max_messages
        self._retention_s = retention_s
        self._per_owner = per_owner
        self._create = redis.register_script(
            CREATE_CONVERSATION + "return create_conversation(KEYS, ARGV)"
        )
        self._touch = redis.register_script(
            TOUCH_CONVERSATION + "return touch_conversation(KEYS, ARGV)"
        )
        self._append = redis.register_script(_APPEND)

    async def create(self, owner: str, title: str = "") -> str:
        """A new conversation of `owner`'s; TooManyRequests when they hold too many."""
        conversation_id = uuid.uuid4().hex
        call = self.creation(owner, conversation_id, title)
        async with redis_errors():
            full = await self._create(keys=call.keys, args=call.args)
        if full:
            raise self.too_many(full)
        return conversation_id

    def creation(self, owner: str, conversation_id: str, title: str) -> ScriptCall:
        """The keys and arguments of `create_conversation` that make this one (see `create`)."""
        now = utcnow()
        at = now.timestamp()
        names = [keys.conversation(conversation_id), keys.user_conversations(owner)]
        argv = [conversation_id, owner, title[:200], now.isoformat(), repr(at)]
        argv += [repr(at - self._retention_s), str(self._retention_s), str(self._per_owner)]
        return ScriptCall(names, argv)

    def too_many(self, full: Sequence[Any]) -> TooManyRequests:
        """The refusal of a new conversation, from what `create_conversation` returned: how
        many the owner holds, and when the least recently used one was last used (Unix s)."""
        held, oldest_used = int(full[0]), float(full[1])
        wait_s = oldest_used + self._retention_s - utcnow().timestamp()
        return TooManyRequests(
            f"you hold {held} conversations (the limit is {self._per_owner}); delete some "
            "(DELETE /api/v1/conversations/{id}, or DELETE /session/{id} for the Perses "
            "plugin's sessions), or wait for the least recently used one to expire "
            f"(in {_span(wait_s)})",
            retry_after_s=max(1, math.ceil(wait_s)),
        )

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
        """The owner's conversations, most recently used first (the expired ones left out)."""
        cutoff = utcnow().timestamp() - self._retention_s
        async with redis_errors():
            ids = cast(
                list[str],
                await self._redis.zrevrangebyscore(
                    keys.user_conversations(owner), "+inf", cutoff, start=offset, num=limit
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
        """A use of the conversation: it lives a retention period from now and is listed
        first; it is named by `title` (its first question) unless it has a name."""
        call = self.touching(owner, conversation_id, title)
        async with redis_errors():
            await self._touch(keys=call.keys, args=call.args)

    def touching(self, owner: str, conversation_id: str, title: str) -> ScriptCall:
        """The keys and arguments of `touch_conversation` for this use (see `touch`)."""
        at = utcnow().timestamp()
        names = [
            keys.conversation(conversation_id),
            keys.conversation_messages(conversation_id),
            keys.user_conversations(owner),
        ]
        argv = [conversation_id, repr(at), repr(at - self._retention_s)]
        argv += [str(self._retention_s), title[:200]]
        return ScriptCall(names, argv)

    async def append(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        """Add a finished turn's messages; the oldest go once the history is full."""
        if not messages:
            return
        names = [keys.conversation(conversation_id), keys.conversation_messages(conversation_id)]
        argv = [str(self._max_messages), *(json.dumps(message) for message in messages)]
        async with redis_errors():
            await self._append(keys=names, args=argv)
