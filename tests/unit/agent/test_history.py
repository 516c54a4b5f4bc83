"""A follow-up sends the conversation's earlier turns to the model again: within a budget of
tokens, questions and answers first, the oldest tool output shortened and left out first, and
the model told; the stored history stays whole."""

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import fakeredis
import httpx
import pytest
from pydantic import BaseModel

from persai.agent import Investigator, Limits, Progress, Turn, history
from persai.agent.llama import (
    AssistantMessage,
    Message,
    ModelTurn,
    ToolCall,
    ToolResult,
    UserMessage,
)
from persai.agent.results.tokens import estimate_tokens
from persai.agent.tools import Toolbox, ToolContext, ToolOutput, UpstreamSlots, tool
from persai.config import Settings
from persai.jobs import ConversationStore, Job, JobStatus, JobStore, Step
from persai.queue import QueueMessage
from persai.runtime import JobRunner, Services
from persai.runtime.credentials import CredentialsSource

BUDGET = history.DEFAULT_BUDGET_TOKENS


def tool_output(turn: int, call: int) -> str:
    """A tool result of about 1,800 tokens: a head line, then per-series lines."""
    head = f"Range query: rate(http_requests_total[5m]) turn {turn} call {call}"
    lines = [
        f'{{service="svc-{n}", endpoint="/api/v{turn}/{n}"}} min 0.{n} max 12.{n} mean 3.{n}'
        for n in range(60)
    ]
    return "\n".join([head, *lines])


def conversation(turns: int) -> list[Message]:
    """`turns` turns as the runner stores them: question, text, two tool calls and their
    results, then a long answer."""
    messages: list[Message] = []
    for n in range(turns):
        calls = [
            ToolCall(f"c{n}-{i}", "execute_range_query", f'{{"query": "q{n}-{i}"}}') for i in (1, 2)
        ]
        messages += [UserMessage(f"Question {n}: why is checkout slow at 14:{n:02d}?")]
        messages += [AssistantMessage(f"Looking at turn {n}."), *calls]
        messages += [ToolResult(c.call_id, tool_output(n, i)) for i, c in enumerate(calls)]
        messages += [AssistantMessage(f"Answer {n}: " + "the payment service is slow. " * 60)]
    return messages


def tokens(messages: Sequence[Message]) -> int:
    return sum(history.cost(m) for m in messages)


def calls_have_results(messages: Sequence[Message]) -> bool:
    """What the Responses API needs: every function call answered by its output."""
    calls = {m.call_id for m in messages if isinstance(m, ToolCall)}
    results = {m.call_id for m in messages if isinstance(m, ToolResult)}
    return calls == results


class RecordingModel:
    """Answers every call at once, without tools, and keeps what it was sent."""

    def __init__(self) -> None:
        self.inputs: list[list[Message]] = []

    async def stream_turn(self, *, messages: Sequence[Message], **_: Any) -> ModelTurn:
        self.inputs.append(list(messages))
        return ModelTurn(text="Follow-up answer.")

    async def list_models(self) -> list[str]:
        return ["m"]

    async def aclose(self) -> None:
        pass


class _Reporter:
    async def text(self, delta: str) -> None:
        pass

    async def tool_call(self, step: Step) -> None:
        pass

    async def tool_result(self, step: Step) -> None:
        pass


def test_a_40_turn_conversation_fits_the_budget_and_keeps_the_first_question() -> None:
    earlier = conversation(40)
    assert tokens(earlier) > 10 * BUDGET  # what was sent before: every turn's tool output again
    model = RecordingModel()

    async def follow_up() -> Progress:
        limits = Limits(
            max_steps=3, model_call_timeout_s=5, deadline=asyncio.get_running_loop().time() + 30
        )
        turn = Turn(question="And now?", model="m", instructions="", history=earlier)
        investigator = Investigator(model, Toolbox([], timeout_s=1))
        return await investigator.run(
            turn, cast(ToolContext, None), _Reporter(), limits, Progress()
        )

    progress = asyncio.run(follow_up())

    [sent] = model.inputs
    *before, question = sent
    assert question == UserMessage("And now?")
    assert tokens(before) <= BUDGET
    assert tokens(before) > BUDGET * 0.8  # what fits is kept, not far less
    texts = [m.text for m in before if isinstance(m, UserMessage | AssistantMessage)]
    assert "Question 0: why is checkout slow at 14:00?" in texts[0]
    assert "shortened to fit the model's context" in texts[0]  # the model is told
    # the latest question and answer are there whole; the oldest tool output went first
    assert "Question 39: why is checkout slow at 14:39?" in texts
    assert earlier[-1] in before
    assert calls_have_results(before)
    assert not any(isinstance(m, ToolResult) and "turn 0 " in m.output for m in before)
    # what the job stores for the conversation is this turn alone, not the shortened history
    assert progress.messages == [UserMessage("And now?"), AssistantMessage("Follow-up answer.")]


def test_a_history_that_fits_is_sent_as_it_is() -> None:
    earlier = conversation(2)
    assert history.fit(earlier, tokens(earlier)) == earlier


def test_tool_results_are_summarised_first_oldest_first() -> None:
    earlier = conversation(3)
    # room for all but about one tool result: the oldest one is cut to its first lines
    fitted = history.fit(earlier, tokens(earlier) - 1500)

    results = [m for m in fitted if isinstance(m, ToolResult)]
    assert len(results) == 6
    first = results[0].output
    assert first.startswith("Range query: rate(http_requests_total[5m]) turn 0 call 0")
    assert estimate_tokens(first) <= history.SUMMARY_TOKENS
    assert first.endswith("[the rest is left out of the conversation's history]")
    assert [r.output for r in results[2:]] == [
        m.output for m in earlier if isinstance(m, ToolResult)
    ][2:]
    assert [m for m in fitted if isinstance(m, AssistantMessage)] == [
        m for m in earlier if isinstance(m, AssistantMessage)
    ]
    assert "tool result(s) shortened to their beginning" in cast(UserMessage, fitted[0]).text


def test_questions_outlast_everything_and_the_first_stays() -> None:
    earlier = conversation(40)
    fitted = history.fit(earlier, 600)

    assert tokens(fitted) <= 600
    assert not any(isinstance(m, ToolCall | ToolResult) for m in fitted)
    questions = [m.text for m in fitted if isinstance(m, UserMessage)]
    assert "Question 0: why is checkout slow at 14:00?" in questions[0]
    assert "earlier question(s) left out with their answers" in questions[0]
    assert len(questions) < 40


def test_a_budget_of_zero_sends_no_earlier_turns() -> None:
    assert history.fit(conversation(3), 0) == []


class BigParams(BaseModel):
    query: str


@tool(BigParams)
async def big_query(context: ToolContext, params: BigParams) -> ToolOutput:
    """A query with a large result."""
    return ToolOutput(tool_output(0, 0).replace("turn 0", params.query))


class ToolThenAnswer(RecordingModel):
    """Per question: one call of `big_query`, then an answer of about 400 tokens."""

    async def stream_turn(self, *, messages: Sequence[Message], **_: Any) -> ModelTurn:
        self.inputs.append(list(messages))
        if isinstance(messages[-1], UserMessage):
            call = ToolCall(f"c{len(self.inputs)}", "big_query", '{"query": "latency"}')
            return ModelTurn(tool_calls=[call])
        return ModelTurn(text="The payment service is slow. " * 60)


@pytest.mark.anyio
async def test_the_runner_keeps_a_long_conversation_within_the_configured_budget() -> None:
    budget = 3000
    settings = Settings(
        auth=False,
        datasources="prom=http://127.0.0.1:9",
        model="m",
        history_budget_tokens=budget,
    )
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    model = ToolThenAnswer()
    store, conversations = JobStore(redis, retention_s=600), ConversationStore(redis)
    async with httpx.AsyncClient() as http:
        runner = JobRunner(
            Services(
                settings=settings,
                store=store,
                conversations=conversations,
                http=http,
                tools_http=cast(Any, None),  # big_query asks no datasource
                upstream_slots=UpstreamSlots(1),
                investigator=Investigator(model, Toolbox([big_query], timeout_s=5)),
                credentials=CredentialsSource(settings, store, http),
            ),
            worker_id="w",
        )
        conversation_id = await conversations.create("alice", title="q")
        for n in range(40):
            job = Job(
                id=f"j{n}",
                owner="alice",
                question=f"Question {n}: why is checkout slow?",
                datasource="/proxy/globaldatasources/prom",
                conversation_id=conversation_id,
            )
            await store.create(job, None, 60, QueueMessage(tag=f"t{n}", raw="{}"))
            await runner.run(job.id)
            done = await store.get(job.id)
            assert done is not None
            assert done.status is JobStatus.SUCCEEDED, done.error
    stored = (await conversations.get_for("alice", conversation_id)).messages
    await redis.aclose()

    # the last question's first model call: the earlier 39 turns, then the question
    *before, question = model.inputs[-2]
    assert question == UserMessage("Question 39: why is checkout slow?")
    assert tokens(before) <= budget
    assert "Question 0: why is checkout slow?" in cast(UserMessage, before[0]).text
    assert calls_have_results(before)
    assert len(stored) == 40 * 4  # question, call, result, answer: stored whole
