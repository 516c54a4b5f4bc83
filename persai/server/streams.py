"""Job event streams for SSE subscribers: one Redis reader per job per API process.

However many clients follow a job, the API reads its stream once (XREAD BLOCK) and hands each
event to every subscriber's queue. A subscriber registers first, then reads the history it
missed, then drains its queue skipping what the history already gave: nothing lost, nothing
repeated. The last subscriber to leave stops the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from persai.errors import PersAIError
from persai.jobs import Event, JobStore

log = logging.getLogger(__name__)

IDLE_CHECK_S = 15.0
"""A subscriber that heard nothing for this long checks that its job still exists."""


def _order(event_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = event_id.partition("-")
    return int(milliseconds), int(sequence or 0)


@dataclass
class _Feed:
    cursor: str
    queues: set[asyncio.Queue[Event]] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None


class EventHub:
    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._feeds: dict[str, _Feed] = {}

    async def follow(self, job_id: str, after: str) -> AsyncGenerator[Event]:
        """The job's events after the id `after` (`0`: all), until `done`."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        feed = await self._join(job_id, queue)
        try:
            last = after
            for event in await self._store.read_events(job_id, after, block_ms=None):
                yield event
                last = event.id
                if event.event == "done":
                    return
            if last == after and await self._finished(job_id):
                return
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), IDLE_CHECK_S)
                except TimeoutError:
                    if await self._store.get(job_id) is None:
                        return
                    continue
                if _order(event.id) <= _order(last):
                    continue
                yield event
                last = event.id
                if event.event == "done":
                    return
        finally:
            self._leave(job_id, feed, queue)

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
