"""Job event streams for SSE subscribers: one Redis reader per job per API process.

However many clients follow a job, the API reads its stream once (XREAD BLOCK) and hands each
event to every subscriber's queue. A subscriber registers first, then reads the history it
missed, then drains its queue skipping what the history already gave: nothing lost, nothing
repeated. The last subscriber to leave stops the reader. How many streams one user may follow
at once is bounded by `slots` (see `stream_slots`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from persai.errors import InvalidRequest, PersAIError
from persai.jobs import Event, JobStore
from persai.server.stream_slots import StreamSlots

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


@dataclass
class _Feed:
    cursor: str
    queues: set[asyncio.Queue[Event]] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None


class EventHub:
    def __init__(self, store: JobStore, slots: StreamSlots) -> None:
        self._store = store
        self.slots = slots
        self._feeds: dict[str, _Feed] = {}

    async def resume_point(self, job_id: str, last_event_id: str | None) -> str:
        """The entry id after which a stream with this `Last-Event-ID` resumes (`0`: from the
        start); InvalidRequest (400) for an id that is malformed or past the job's last event
        (no client was ever sent such an id)."""
        if not last_event_id:
            return "0"
        milliseconds, sequence = _position(last_event_id)
        newest = await self._store.last_event_id(job_id)
        if (milliseconds, sequence) > _order(newest):
            raise InvalidRequest(
                f"Last-Event-ID {last_event_id} is past the last event of this investigation "
                f"({newest})"
            )
        return f"{milliseconds}-{sequence}"

    async def follow(self, job_id: str, after: str) -> AsyncGenerator[Event]:
        """The job's events after the id `after` (`0`: all), until `done`; at once, after what
        is stored, when the job has finished (or is gone)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        feed = await self._join(job_id, queue)
        try:
            events, ended = await self._history(job_id, after)
            for event in events:
                yield event
            if not ended:
                last = events[-1].id if events else after
                async for event in self._live(job_id, queue, last):
                    yield event
        finally:
            self._leave(job_id, feed, queue)

    async def _live(
        self, job_id: str, queue: asyncio.Queue[Event], last: str
    ) -> AsyncGenerator[Event]:
        """What the reader hands over after `last`, until `done`; or, when the job turns out
        to have finished while nothing came, what its stream holds after `last`."""
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), IDLE_CHECK_S)
            except TimeoutError:
                if not await self._finished(job_id):
                    continue
                for stored in (await self._history(job_id, last))[0]:
                    yield stored
                return
            if _order(event.id) <= _order(last):
                continue  # the history gave it already
            yield event
            last = event.id
            if event.event == "done":
                return

    async def _history(self, job_id: str, after: str) -> tuple[list[Event], bool]:
        """The stored events after `after` (up to `done`), and whether they are all there will
        be: the status is read first, and a finished job's stream already holds its `done`."""
        finished = await self._finished(job_id)
        events = await self._store.read_events(job_id, after, block_ms=None)
        for index, event in enumerate(events):
            if event.event == "done":
                return events[: index + 1], True
        return events, finished

    async def _finished(self, job_id: str) -> bool:
        job = await self._store.get(job_id)
        return job is None or job.status.terminal

    async def _join(self, job_id: str, queue: asyncio.Queue[Event]) -> _Feed:
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = _Feed(cursor=await self._store.last_event_id(job_id))
            self._feeds[job_id] = feed
            feed.reader = asyncio.create_task(self._read(job_id, feed))
        feed.queues.add(queue)
        return feed

    def _leave(self, job_id: str, feed: _Feed, queue: asyncio.Queue[Event]) -> None:
        feed.queues.discard(queue)
        if not feed.queues and self._feeds.get(job_id) is feed:
            del self._feeds[job_id]
            if feed.reader is not None:
                feed.reader.cancel()

    async def _read(self, job_id: str, feed: _Feed) -> None:
        while True:
            try:
                batch = await self._store.read_events(
                    job_id, feed.cursor, block_ms=int(IDLE_CHECK_S * 1000)
                )
            except PersAIError as exc:
                log.warning("following job %s: %s; retrying", job_id, exc.message)
                await asyncio.sleep(1.0)
                continue
            for event in batch:
                feed.cursor = event.id
                for queue in feed.queues:
                    queue.put_nowait(event)

    async def close(self) -> None:
        readers = [feed.reader for feed in self._feeds.values() if feed.reader is not None]
        self._feeds.clear()
        for reader in readers:
            reader.cancel()
        for reader in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
