"""Submissions: a question checked, admitted, and stored as a queued job, in one Redis step.

Whichever way a question comes (the native API, the Perses plugin's turns), it goes through
`Submissions.submit`: its size and datasource are checked and its model chosen without Redis;
then one script counts it against the owner's rate, checks the owner's unfinished jobs and the
queue's depth, checks (or starts) its conversation, and stores the job with the queue message
that runs it. One round trip; and nothing is half done: a refused submission stores no job and
starts no conversation, an accepted one is queued (its 202 means it will run).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from persai.config import Settings
from persai.credentials import Credentials, Sealer
from persai.datasources import parse_datasource, resolve
from persai.errors import (
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    UnknownModel,
)
from persai.jobs import keys
from persai.jobs.conversations import CREATE_CONVERSATION, TOUCH_CONVERSATION, ConversationStore
from persai.jobs.models import AlertRef, Job, TimeRange
from persai.jobs.scripts import CREATE_JOB
from persai.jobs.store import JobStore, redis_errors
from persai.queue import Publisher

__all__ = ["Question", "Submissions"]

# KEYS: the job's (those of `create_job`, 8), then the conversation hash, its messages, the
# owner's conversations, the owner's submissions this minute. ARGV: '1' for a follow-up (a
# conversation the owner has) or '' for a new conversation, the submissions allowed in a minute,
# the unfinished jobs allowed per owner, the queue depth allowed, the 12 arguments of
# `create_job`, then those of `touch_conversation` (follow-up) or `create_conversation` (new).
# The minute's counter (kept two minutes) is the first write, which Redis refuses when out of
# memory: a script refused so wrote nothing. Returns {'queued'}, {'stored'} (the job exists: a
# call retried after its reply was lost writes nothing twice), or why not: {'rate', count},
# {'active', unfinished jobs}, {'full', jobs waiting}, {'conversation'} (not the owner's) or
# {'conversations', held, last use of the oldest} (the owner holds too many).
_SUBMIT = (
    CREATE_JOB
    + CREATE_CONVERSATION
    + TOUCH_CONVERSATION
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'stored'} end
local submitted = redis.call('INCR', KEYS[12])
redis.call('EXPIRE', KEYS[12], 120)
if submitted > tonumber(ARGV[2]) then return {'rate', submitted} end
local active = redis.call('SCARD', KEYS[5])
if active >= tonumber(ARGV[3]) then return {'active', active} end
local queued = redis.call('SCARD', KEYS[4])
if queued >= tonumber(ARGV[4]) then return {'full', queued} end
local follow_up, conversation = ARGV[1] == '1', {unpack(ARGV, 17)}
if follow_up then
  if redis.call('HGET', KEYS[9], 'owner') ~= ARGV[7] then return {'conversation'} end
else
  local full = create_conversation({KEYS[9], KEYS[11]}, conversation)
  if full then return {'conversations', full[1], full[2]} end
end
create_job({unpack(KEYS, 1, 8)}, {unpack(ARGV, 5, 16)})
if follow_up then touch_conversation({KEYS[9], KEYS[10], KEYS[11]}, conversation) end
return {'queued'}
"""
)


@dataclass(frozen=True)
class Question:
    """What a caller asks: everything of a submission but who asks it."""

    question: str
    datasource: str
    conversation_id: str | None = None
    """A conversation of the caller's to follow up in; None starts a new one."""
    time_range: TimeRange | None = None
    model: str | None = None
    job_id: str | None = None
    """The job's id, when the caller chose it (the plugin's turns, alerts); else a new one."""
    alert: AlertRef | None = None
    """The Alertmanager group it was asked for (`persai.alerts`), if any."""


class Submissions:
    """Admits questions and stores them as queued jobs (see the module's docstring)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        *,
        store: JobStore,
        conversations: ConversationStore,
        queue: Publisher,
        sealer: Sealer | None,
        models: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self._settings = settings
        self._store = store
        self._conversations = conversations
        self._queue = queue
        self._sealer = sealer
        self._models = models
        self._submit = redis.register_script(_SUBMIT)

    async def submit(self, owner: str, credentials: Credentials | None, asked: Question) -> Job:
        """Check, admit and queue `asked` for `owner`, whose `credentials` the worker forwards;
        the job, queued. PayloadTooLarge, InvalidRequest (the datasource), UnknownModel,
        TooManyRequests (the owner's limits), ServiceUnavailable (the queue is full, or no
        model), NotFound (not the owner's conversation), StoreUnavailable (Redis)."""
        settings = self._settings
        if len(asked.question) > settings.question_max_chars:
            raise PayloadTooLarge(
                f"the question is longer than {settings.question_max_chars} characters"
            )
        path = parse_datasource(asked.datasource, settings.perses_api_prefix)
        resolve(path, settings)
        try:
            model = await self.choose_model(asked.model)
        except (ServiceUnavailable, UnknownModel):
            await self._store.ping()  # Redis down is said first, as when admission came first
            raise
        job = Job(
            id=asked.job_id or uuid.uuid4().hex,
            owner=owner,
            question=asked.question,
            datasource=path.path,
            conversation_id=asked.conversation_id or uuid.uuid4().hex,
            model=model,
            time_range=asked.time_range,
            source="alert" if asked.alert is not None else "user",
            alert=asked.alert,
        )
        now = time.time()
        names, argv = self._call(job, credentials, follow_up=bool(asked.conversation_id), now=now)
        async with redis_errors():
            outcome = await self._submit(keys=names, args=argv)
        self._check(outcome, job, now)
        return job

    async def choose_model(self, requested: str | None) -> str:
        """The model a submission names, else the configured default, else the first served;
        UnknownModel for one that is not served."""
        default = self._settings.model
        if requested is None and default:
            return default
        models = await self._models()
        if requested is None:
            if not models:
                raise ServiceUnavailable(
                    "no model is configured; set PERSAI_MODEL", retry_after_s=30
                )
            return models[0]
        if requested not in models:
            raise UnknownModel(
                f"unknown model {requested!r}; available: {', '.join(models) or 'none'}"
            )
        return requested

    def _call(
        self, job: Job, credentials: Credentials | None, *, follow_up: bool, now: float
    ) -> tuple[list[str], list[str]]:
        settings = self._settings
        sealed = None
        if credentials is not None and self._sealer is not None:
            sealed = self._sealer.seal(credentials, context=job.id)
        stored = self._store.creation(
            job, sealed, settings.credentials_ttl_s, self._queue.entry(job.id)
        )
        conversation_id = job.conversation_id
        if follow_up:
            conversation = self._conversations.touching(job.owner, conversation_id, job.question)
        else:
            conversation = self._conversations.creation(job.owner, conversation_id, job.question)
        names = [*stored.keys, keys.conversation(conversation_id)]
        names += [keys.conversation_messages(conversation_id)]
        names += [keys.user_conversations(job.owner), keys.user_rate(job.owner, int(now // 60))]
        argv = ["1" if follow_up else "", str(settings.submissions_per_minute)]
        argv += [str(settings.max_running_per_user), str(settings.max_queue_depth)]
        return names, [*argv, *stored.args, *conversation.args]

    def _check(self, outcome: list[Any], job: Job, now: float) -> None:
        """Raise what a refused submission's script said (nothing for a queued one)."""
        settings = self._settings
        match outcome[0]:
            case "rate":
                raise TooManyRequests(
                    f"more than {settings.submissions_per_minute} submissions in a minute",
                    retry_after_s=max(1, 60 - int(now % 60)),
                )
            case "active":
                raise TooManyRequests(
                    f"you have {outcome[1]} unfinished investigations (the limit is "
                    f"{settings.max_running_per_user}); wait for one to finish or cancel one",
                    retry_after_s=5,
                )
            case "full":
                raise ServiceUnavailable(
                    f"the queue is full ({outcome[1]} investigations waiting); try again shortly",
                    retry_after_s=10,
                )
            case "conversation":
                raise NotFound(f"no conversation {job.conversation_id!r}")
            case "conversations":
                raise self._conversations.too_many(outcome[1:])
