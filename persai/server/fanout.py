"""One blocking Redis read for all the job streams an API process follows, fanned out in-process.

`Pump` keeps a cursor per followed job (`Feed`) and reads every followed stream after its cursor
with one `XREAD BLOCK` on one connection, so the connections an API process holds do not grow
with its subscribers nor with the jobs they follow. A job followed for the first time while that
read blocks must join it: the pump also reads a stream of its own (`keys.reader_wake`), and one
entry there ends the read at once. Each event goes to each subscriber's bounded buffer; a
subscriber whose buffer is full is dropped (`Lagged`) instead of holding the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sse_starlette import ServerSentEvent

from persai.errors import PersAIError
from persai.jobs import Event, keys

log = logging.getLogger(__name__)

BUFFER_EVENTS = 1024
"""Events a subscriber may be behind the reader before it is dropped."""
READ_BLOCK_MS = 5000
"""How long one read blocks (below the client's socket timeout); a wake entry ends it sooner."""
READ_COUNT = 1000
"""Entries read per stream at most in one read: no more than BUFFER_EVENTS, so that a
subscriber that had caught up is never dropped by one read."""
WAKE_TTL_MS = 60_000
RETRY_S = (0.05, 0.2, 0.5, 1.0)
"""Pauses before reading again after Redis failed (then the last one, until it answers)."""


class Lagged(PersAIError):
    """This subscriber fell more than BUFFER_EVENTS behind its job's events and was dropped;
    following again from the last event it got resumes without a gap."""

    error_type = "stream_lagged"


def _order(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


@dataclass(slots=True)
class Entry:
    """One event as read from Redis, shared by all its subscribers: its data is parsed, and its
    Server-Sent Events frame encoded, once (on first use) for all of them."""

    id: str
    name: str
    raw: str
    """Its data as stored (JSON)."""
    order: tuple[int, int] = (0, 0)
    _event: Event | None = None
    _frame: bytes | None = None

    def __post_init__(self) -> None:
        self.order = _order(self.id)

    @classmethod
    def stored(cls, entries: list[tuple[str, dict[str, str]]]) -> list[Entry]:
        """The entries of a stream as XREAD or XRANGE return them."""
        return [cls(entry_id, fields["event"], fields["data"]) for entry_id, fields in entries]

    @property
    def event(self) -> Event:
        if self._event is None:
            self._event = Event.model_validate(
                {"id": self.id, "event": self.name, "data": json.loads(self.raw)}
            )
        return self._event

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = ServerSentEvent(data=self.raw, event=self.name, id=self.id).encode()
        return self._frame


class Subscriber:
    """One client's place in a job's events: a bounded buffer the reader fills."""

    __slots__ = ("_buffer", "_waiter", "dropped")

    def __init__(self) -> None:
        self._buffer: deque[Entry] = deque()
        self._waiter: asyncio.Future[bool] | None = None
        self.dropped = False

    def offer(self, entry: Entry) -> None:
        if self.dropped:
            return
        if len(self._buffer) >= BUFFER_EVENTS:
            self.dropped = True
        else:
            self._buffer.append(entry)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)

    def nudge(self) -> None:
        """Have a waiting `next` return None (its job finished while none came)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)

    async def next(self) -> Entry | None:
        """The next entry; None when its job finished while none came; Lagged once the buffer is
        drained after the subscriber was dropped."""
        while not self._buffer:
            if self.dropped:
                raise Lagged(f"more than {BUFFER_EVENTS} events behind; follow again")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                if not await waiter:
                    return None
            finally:
                self._waiter = None
        return self._buffer.popleft()


@dataclass(slots=True)
class Feed:
    cursor: str
    order: tuple[int, int]
    subscribers: set[Subscriber] = field(default_factory=set)
    heard_at: float = 0.0
    """When the job's last event came (or the feed started), by the loop's clock."""


class Pump:
    """The one reader of an API process's followed job streams."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        idle_s: float,
        finished: Callable[[str], Awaitable[bool]],
    ) -> None:
        self._redis = redis
        self._idle_s = idle_s
        """A job quiet this long is checked (`finished`): one that ended (or is gone) without
        its `done` reaching the reader has its subscribers nudged to read what it stored."""
        self._finished = finished
        self.feeds: dict[str, Feed] = {}
        self._task: asyncio.Task[None] | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._reading: frozenset[str] | None = None
        """The jobs of the read blocking now (None: none is)."""
        self._wake_key = keys.reader_wake(uuid.uuid4().hex)
        self._wake_cursor = "0-0"
        self._waking: set[asyncio.Task[None]] = set()
        self._reads = 0
        """Blocking reads started: a wake is sent once per read (`_woken` names which)."""
        self._woken = -1

    async def join(
        self, job_id: str, subscriber: Subscriber, newest: Callable[[str], Awaitable[str]]
    ) -> None:
        """Hand `subscriber` every event of `job_id` from now on (`newest`: the id of the
        job's newest event, where a new feed starts)."""
        feed = self.feeds.get(job_id)
        if feed is None:
            cursor = await newest(job_id)
            feed = self.feeds.get(job_id)  # another subscriber may have started it meanwhile
            if feed is None:
                now = asyncio.get_running_loop().time()
                feed = self.feeds[job_id] = Feed(cursor, _order(cursor), heard_at=now)
                self._start_reading(job_id)
        feed.subscribers.add(subscriber)

    def leave(self, job_id: str, subscriber: Subscriber) -> None:
        feed = self.feeds.get(job_id)
        if feed is None:
            return
        feed.subscribers.discard(subscriber)
        if not feed.subscribers:
            del self.feeds[job_id]  # the next read leaves its stream out

    def _start_reading(self, job_id: str) -> None:
        if self._idle_task is None:
            self._idle_task = asyncio.create_task(self._nudge_idle())
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        elif (
            self._reading is not None and job_id not in self._reading and self._woken != self._reads
        ):
            # once per read: one that started after an earlier wake still needs its own
            self._woken = self._reads
            task = asyncio.create_task(self._wake())
            self._waking.add(task)
            task.add_done_callback(self._waking.discard)

    async def _wake(self) -> None:
        """End the blocking read, so that the next one includes the jobs joined since."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"joined": "1"}, maxlen=1, approximate=False)
                pipe.pexpire(self._wake_key, WAKE_TTL_MS)
                await pipe.execute()
        except (RedisError, OSError) as exc:  # the read ends by itself within READ_BLOCK_MS
            log.debug("event reader not woken: %s", type(exc).__name__)

    async def _nudge_idle(self) -> None:
        """Check the jobs that were quiet for `idle_s`, once each (not once per subscriber),
        every `idle_s / 2`; nudge the subscribers of those that finished."""
        try:
            while self.feeds:
                await asyncio.sleep(self._idle_s / 2)
                now = asyncio.get_running_loop().time()
                quiet = [
                    job for job, feed in self.feeds.items() if feed.heard_at <= now - self._idle_s
                ]
                for job in quiet:
                    self.feeds[job].heard_at = now
                ended = await asyncio.gather(*map(self._finished, quiet), return_exceptions=True)
                for job, finished in zip(quiet, ended, strict=True):
                    feed = self.feeds.get(job)
                    if finished is True and feed is not None:
                        for subscriber in list(feed.subscribers):
                            subscriber.nudge()
        finally:
            self._idle_task = None

    async def _run(self) -> None:
        failures = 0
        try:
            while self.feeds:
                try:
                    reply = await self._read()
                    self._deliver(*reply)
                except Exception as exc:  # not only Redis: nothing may stop every feed for good
                    if failures == 0 and isinstance(exc, RedisError | OSError):
                        log.warning("reading job events: %s; retrying", type(exc).__name__)
                    elif failures == 0:
                        log.exception("reading job events; retrying")
                    await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
                    failures += 1
                    continue
                if failures:
                    log.info("reading job events again")
                failures = 0
        finally:
            self._task = None
            self._reading = None

    async def _read(self) -> tuple[list[Any], dict[str, str]]:
        """What the followed streams hold after their cursors (waiting for something), and
        the job of each stream."""
        jobs = {keys.events(job): job for job in self.feeds}
        streams: dict[Any, Any] = {name: self.feeds[job].cursor for name, job in jobs.items()}
        streams[self._wake_key] = self._wake_cursor
        self._reading = frozenset(jobs.values())
        self._reads += 1
        try:
            reply = await self._redis.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
        finally:
            self._reading = None
        return cast(list[Any], reply or []), jobs

    def _deliver(self, reply: list[Any], jobs: dict[str, str]) -> None:
        now = asyncio.get_running_loop().time()
        for name, entries in reply:
            if name == self._wake_key:
                self._wake_cursor = entries[-1][0]
                continue
            feed = self.feeds.get(jobs.get(name, ""))
            if feed is None:
                continue
            feed.heard_at = now
            for entry in Entry.stored(entries):
                if entry.order <= feed.order:
                    continue  # a feed started again meanwhile, further on
                feed.cursor, feed.order = entry.id, entry.order
                for subscriber in feed.subscribers:
                    subscriber.offer(entry)

    async def close(self) -> None:
        self.feeds.clear()
        tasks = [*self._waking, *(t for t in (self._task, self._idle_task) if t is not None)]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
