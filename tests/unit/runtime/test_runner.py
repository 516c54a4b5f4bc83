"""The job runner's attempts: one that stalled while another worker took its job over stores
nothing, and the job ends with the new attempt's outcome."""

import asyncio
import json
from collections.abc import AsyncIterator

import fakeredis
import pytest

from persai.agent import Limits, Progress, Reporter, Turn
from persai.agent.llama import AssistantMessage
from persai.agent.tools import ToolContext
from persai.jobs import ConversationStore, JobStatus, JobStore, Step, keys
from persai.queue import QueueMessage
from tests.support.runner import runner, stored_job

pytestmark = pytest.mark.anyio


class ScriptedInvestigator:
    """Answers `answer`; with a gate, reports that it began and waits for the gate first, then
    reports a tool call (a progress write) when `report_after` is set."""

    def __init__(self, answer: str, *, gate: asyncio.Event | None = None) -> None:
        self.answer = answer
        self.gate = gate
        self.began = asyncio.Event()
        self.report_after = False

    async def run(
        self,
        turn: Turn,
        context: ToolContext,
        reporter: Reporter,
        limits: Limits,
        progress: Progress,
    ) -> Progress:
        await reporter.text(f"{self.answer} (thinking)")
        self.began.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.report_after:
            step = Step(call_id="late", tool="execute_range_query", arguments={"query": "up"})
            progress.steps.append(step)
            await reporter.tool_call(step)
        progress.answer = self.answer
        progress.messages.append(AssistantMessage(text=self.answer))
        return progress


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


@pytest.mark.parametrize("last_write", ["outcome", "progress"])
async def test_a_stalled_attempt_loses_to_the_attempt_that_took_its_job_over(
    redis: fakeredis.FakeAsyncRedis, last_write: str
) -> None:
    store = JobStore(redis, retention_s=60)
    job = await stored_job(redis)
    gate = asyncio.Event()
    stale = ScriptedInvestigator("Stale answer.", gate=gate)
    stale.report_after = last_write == "progress"
    worker_a = runner(redis, stale, "worker-a")
    first = asyncio.create_task(worker_a.run("j1"))
    await asyncio.wait_for(stale.began.wait(), 5)

    # worker-a stalls past its lease; worker-b's reaper queues the job again and starts it
    await redis.delete(keys.lease("j1"))
    fresh = ScriptedInvestigator("Fresh answer.", gate=asyncio.Event())
    worker_b = runner(redis, fresh, "worker-b")
    assert await worker_b.recover("j1", QueueMessage(tag="t2", raw="{}"))
    second = asyncio.create_task(worker_b.run("j1"))
    await asyncio.wait_for(fresh.began.wait(), 5)
    taken_over = len(await store.read_events("j1", "0", block_ms=None))

    gate.set()  # worker-a wakes up while worker-b runs, and finishes its attempt first
    await asyncio.wait_for(first, 5)
    assert worker_a.attempts == {}  # its lease is renewed no more
    assert fresh.gate is not None
    fresh.gate.set()
    await asyncio.wait_for(second, 5)

    ended = await store.get("j1")
    assert ended is not None
    assert (ended.status, ended.answer, ended.attempts) == (
        JobStatus.SUCCEEDED,
        "Fresh answer.",
        2,
    )
    assert ended.steps == []  # worker-a's late tool call is not in the record
    events = await store.read_events("j1", "0", block_ms=None)
    assert "Stale" not in json.dumps([e.data for e in events[taken_over:]])
    assert [e.event for e in events].count("done") == 1
    history = (await ConversationStore(redis).get_for("alice", job.conversation_id)).messages
    assert [m.get("text") for m in history] == ["Fresh answer."]
