"""Job event streams for SSE subscribers: one Redis reader per API process for every job.

However many clients follow however many jobs, an API process reads the streams of all the
jobs it follows with one blocking `XREAD` (`fanout.Pump`) and hands each event to every
subscriber of its job, parsed and encoded once for all of them. A subscriber registers first,
then reads the history it missed, then drains its buffer skipping what the history already
gave: nothing lost, nothing repeated. A subscriber more than `BUFFER_EVENTS` behind is
dropped (`Lagged`): its client reconnects with `Last-Event-ID`, and the others never wait for
it. How many streams one user may follow at once is bounded by `slots` (see `stream_slots`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any, cast

import redis.asyncio as aioredis

from persai.errors import InvalidRequest
from persai.jobs import Event, JobStore, keys
from persai.redis_client import redis_errors
from persai.server.fanout import Entry, Lagged, Pump, Subscriber
from persai.server.stream_slots import StreamSlots

__all__ = ["IDLE_CHECK_S", "Entry", "EventHub", "Lagged"]

log = logging.getLogger(__name__)

IDLE_CHECK_S = 15.0
"""A subscriber that heard nothing for this long checks that its job still exists."""

_EVENT_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_MAX_ID_PART = 2**64 - 1
"""Both parts of a Redis Stream entry id are unsigned 64-bit integers."""


def _order(event_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = event_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def _position(last_event_id: str) -> tuple[int, int]:
    """The entry id a client sent as `Last-Event-ID`, or InvalidRequest (400)."""
    if last_event_id == "0":
        return 0, 0
    match = _EVENT_ID.fullmatch(last_event_id)
    if match is None or max(int(part) for part in match.groups()) > _MAX_ID_PART:
        raise InvalidRequest("Last-Event-ID must be an event id such as 1732456789012-0")
    return int(match[1]), int(match[2])


class EventHub:
    """The events of the jobs this API process's clients follow (`follow`, `frames`)."""

    def __init__(self, store: JobStore, slots: StreamSlots, redis: aioredis.Redis) -> None:
        self._store = store
        self.slots = slots
        self._redis = redis
        self._pump = Pump(redis, idle_s=IDLE_CHECK_S, finished=self._finished)

    @property
    def _feeds(self) -> dict[str, object]:
        """The jobs followed now (each read by the one reader), for tests and metrics."""
        return dict(self._pump.feeds)

    @property
    def subscribers(self) -> int:
        return sum(len(feed.subscribers) for feed in self._pump.feeds.values())

    async def resume_point(self, job_id: str, last_event_id: str | None) -> str:
        """The entry id after which a stream with this `Last-Event-ID` resumes (`0`: from the
        start); InvalidRequest (400) for an id that is malformed, or past the job's last event
        and later than Redis's clock (no client was ever sent such an id).

        An id past the last event but not in the future is one a client was sent before Redis
        failed over to a replica that had not received it yet (asynchronous replication): the
        stream resumes after it, with the events the job writes from then on."""
        if not last_event_id:
            return "0"
        milliseconds, sequence = _position(last_event_id)
        newest = await self._store.last_event_id(job_id)
        if (milliseconds, sequence) > _order(newest) and milliseconds > await self._now_ms():
            raise InvalidRequest(
                f"Last-Event-ID {last_event_id} is past the last event of this investigation "
                f"({newest})"
            )
        return f"{milliseconds}-{sequence}"

    async def _now_ms(self) -> int:
        async with redis_errors():
            seconds, microseconds = await self._redis.time()
        return int(seconds) * 1000 + int(microseconds) // 1000

    async def follow(self, job_id: str, after: str) -> AsyncGenerator[Event]:
        """The job's events after the id `after` (`0`: all), until `done`; at once, after what
        is stored, when the job has finished (or is gone). Lagged when this subscriber fell
        too far behind (follow again from the last event it got)."""
        async for entry in self.entries(job_id, after):
            yield entry.event

    async def follow_through(self, job_id: str, after: str) -> AsyncGenerator[Event]:
        """As `follow`, following again where it was when it lagged: for a stream whose client
        cannot reconnect with `Last-Event-ID` (the plugin's turns)."""
        while True:
            async with contextlib.aclosing(self.follow(job_id, after)) as events:
                try:
                    async for event in events:
                        after = event.id
                        yield event
                    return
                except Lagged:
                    log.info("a subscriber of job %s fell behind; it follows again", job_id)

    async def frames(self, job_id: str, after: str) -> AsyncGenerator[bytes]:
        """As `follow`, each event as its Server-Sent Events frame (`id`, `event`, `data`)."""
        async for entry in self.entries(job_id, after):
            yield entry.frame

    async def entries(self, job_id: str, after: str) -> AsyncGenerator[Entry]:
        subscriber = Subscriber()
        await self._pump.join(job_id, subscriber, self._store.last_event_id)
        try:
            entries, ended = await self._history(job_id, after)
            for entry in entries:
                yield entry
            if not ended:
                last = entries[-1].id if entries else after
                async for entry in self._live(job_id, subscriber, last):
                    yield entry
        finally:
            self._pump.leave(job_id, subscriber)

    async def _live(self, job_id: str, subscriber: Subscriber, last: str) -> AsyncGenerator[Entry]:
        """What the reader hands over after `last`, until `done`; or, when the job turns out
        to have finished while nothing came, what its stream holds after `last`."""
        last_order = _order(last)
        while True:
            entry = await subscriber.next()
            if entry is None:  # the job finished (or is gone) while nothing came
                for stored in (await self._history(job_id, last))[0]:
                    yield stored
                return
            if entry.order <= last_order:
                continue  # the history gave it already
            yield entry
            last, last_order = entry.id, entry.order
            if entry.name == "done":
                return

    async def _history(self, job_id: str, after: str) -> tuple[list[Entry], bool]:
        """The stored events after `after` (up to `done`), and whether they are all there will
        be: the status is read first, and a finished job's stream already holds its `done`."""
        finished = await self._finished(job_id)
        async with redis_errors():
            reply = cast(list[Any], await self._redis.xread({keys.events(job_id): after}))
        entries = [entry for _, stored in reply for entry in Entry.stored(stored)]
        for index, entry in enumerate(entries):
            if entry.name == "done":
                return entries[: index + 1], True
        return entries, finished

    async def _finished(self, job_id: str) -> bool:
        job = await self._store.get(job_id)
        return job is None or job.status.terminal

    async def close(self) -> None:
        await self._pump.close()
