"""The investigation loop in this process, with a scripted model: the step budget, the forced
final answer, tool errors handed back to the model, deadlines and cancellation."""

import asyncio
from typing import cast

import pytest
from pydantic import BaseModel

from persai.agent import Investigator, Limits, Progress, Turn
from persai.agent.investigator import NO_FINAL_ANSWER, TOOL_ERROR_PREFIX
from persai.agent.llama import ModelTurn, ToolResult, UserMessage
from persai.agent.scripted import Call, ScriptedClient, answer, ask_tools
from persai.agent.tools import Toolbox, ToolContext, ToolError, ToolOutput, tool
from persai.errors import ModelProviderError, PersAIError, PersesUnavailable
from persai.jobs import Step, StepStatus

pytestmark = pytest.mark.anyio


class Query(BaseModel):
    query: str


@tool(Query)
async def lookup(context: ToolContext, params: Query) -> ToolOutput:
    """Look a series up; `broken` fails as a datasource would, `slow` takes a minute,
    `perses-down` fails as a lost Perses does."""
    if params.query == "broken":
        raise ToolError("the datasource said no", data={"window": "1h"})
    if params.query == "perses-down":
        raise PersesUnavailable("Perses is unavailable")
    if params.query == "slow":
        await asyncio.sleep(60)
    return ToolOutput(f"result of {params.query}", data={"query": params.query})


class Recorder:
    """What the loop tells the world, in order."""

    def __init__(self) -> None:
        self.streamed = ""
        self.events: list[tuple[str, str]] = []

    async def text(self, delta: str) -> None:
        self.streamed += delta

    async def tool_call(self, step: Step) -> None:
        self.events.append(("call", step.tool))

    async def tool_result(self, step: Step) -> None:
        self.events.append(("result", step.status.value))


def limits(max_steps: int = 5, model_call_timeout_s: float = 5, within_s: float = 30) -> Limits:
    deadline = asyncio.get_running_loop().time() + within_s
    return Limits(max_steps, model_call_timeout_s, deadline)


async def investigate(
    model: ScriptedClient, limits_: Limits, progress: Progress | None = None
) -> tuple[Progress, Recorder]:
    recorder = Recorder()
    turn = Turn(question="Why is checkout slow?", model="m", instructions="Be brief.")
    investigator = Investigator(model, Toolbox([lookup], timeout_s=30))
    done = await investigator.run(
        turn, cast(ToolContext, None), recorder, limits_, progress or Progress()
    )
    return done, recorder


def tools_until_final(text: str) -> object:
    """Asks for a lookup whenever tools are offered; answers `text` when they are not."""

    async def reply(call: Call) -> ModelTurn:
        return ask_tools(("lookup", {"query": "up"})) if call.tools else answer(text)

    return reply


async def test_tool_results_reach_the_model_and_its_answer_ends_the_loop() -> None:
    model = ScriptedClient([ask_tools(("lookup", {"query": "rate"})), answer("Checkout is fine.")])

    progress, recorder = await investigate(model, limits())

    assert progress.answer == "Checkout is fine."
    assert progress.forced is None
    [step] = progress.steps
    assert (step.tool, step.status, step.output) == ("lookup", StepStatus.OK, "result of rate")
    assert step.data == {"query": "rate"}
    assert recorder.events == [("call", "lookup"), ("result", "ok")]
    assert recorder.streamed == "Checkout is fine."
    first, second = model.calls
    assert first.tools == second.tools == ["lookup"]
    assert first.messages == [UserMessage("Why is checkout slow?")]
    assert ToolResult("call_1", "result of rate") in second.messages
    usage = progress.usage
    assert (usage.model_calls, usage.tool_calls) == (2, 1)
    assert (usage.input_tokens, usage.output_tokens) == (20, 10)


async def test_the_step_budget_forces_one_last_call_without_tools() -> None:
    model = ScriptedClient([tools_until_final("From what I saw: fine.")])

    progress, _ = await investigate(model, limits(max_steps=3))

    assert [call.tools for call in model.calls] == [["lookup"]] * 3 + [[]]
    assert progress.forced == "the limit of 3 steps was reached"
    assert "no more tool calls" in model.calls[-1].instructions
    assert progress.forced in model.calls[-1].instructions
    assert model.calls[-1].instructions.startswith("Be brief.")
    assert progress.answer == "From what I saw: fine."
    assert len(progress.steps) == 3
    # the request is in the instructions: the history keeps only what the user asked
    assert [m for m in progress.messages if isinstance(m, UserMessage)] == [
        UserMessage("Why is checkout slow?")
    ]


async def test_a_forced_call_that_says_nothing_still_ends_with_an_answer() -> None:
    model = ScriptedClient([tools_until_final("")])

    progress, _ = await investigate(model, limits(max_steps=1))

    assert progress.answer == NO_FINAL_ANSWER.format(reason="the limit of 1 steps was reached")


@pytest.mark.parametrize(
    ("name", "arguments", "says"),
    [
        ("lookup", '{"query": "broken"}', "the datasource said no"),
        ("nonexistent", "{}", "there is no tool named 'nonexistent'"),
        ("lookup", "{not json", "not valid JSON"),
        ("lookup", '{"limit": 3}', "invalid arguments for lookup: query: Field required"),
    ],
)
async def test_a_tool_error_is_handed_to_the_model_which_goes_on(
    name: str, arguments: str, says: str
) -> None:
    model = ScriptedClient([ask_tools((name, arguments)), answer("Could not query; sorry.")])

    progress, recorder = await investigate(model, limits())

    [step] = progress.steps
    assert step.status is StepStatus.ERROR
    assert step.output is not None
    assert step.output.startswith(f"{TOOL_ERROR_PREFIX} {name}: ")
    assert says in step.output
    [result] = [m for m in model.calls[1].messages if isinstance(m, ToolResult)]
    assert result.output == step.output
    assert recorder.events == [("call", name), ("result", "error")]
    assert progress.answer == "Could not query; sorry."
    if says == "the datasource said no":
        assert step.data == {"window": "1h"}  # what the call had worked out


async def test_an_error_that_is_not_the_tools_fault_ends_the_investigation() -> None:
    model = ScriptedClient([ask_tools(("lookup", {"query": "perses-down"})), answer("unused")])

    with pytest.raises(PersesUnavailable):
        await investigate(model, limits())

    assert len(model.calls) == 1


async def test_a_model_call_past_its_deadline_is_a_model_provider_error() -> None:
    async def hangs(call: Call) -> ModelTurn:
        await asyncio.sleep(60)
        raise AssertionError("not cancelled")

    model = ScriptedClient([hangs])

    with pytest.raises(ModelProviderError, match="did not answer within"):
        await investigate(model, limits(model_call_timeout_s=0.05))


async def test_a_provider_failure_reaches_the_caller_as_it_is() -> None:
    model = ScriptedClient([ModelProviderError("the provider said 500")])

    with pytest.raises(PersAIError, match="the provider said 500"):
        await investigate(model, limits())


async def test_the_investigations_deadline_interrupts_a_tool_and_forces_the_answer() -> None:
    async def reply(call: Call) -> ModelTurn:
        return ask_tools(("lookup", {"query": "slow"})) if call.tools else answer("Partial.")

    model = ScriptedClient([reply])

    progress, _ = await investigate(model, limits(within_s=0.2))

    assert progress.forced == "the investigation's time ran out"
    assert progress.answer == "Partial."
    assert model.calls[-1].tools == []
    [step] = progress.steps  # the interrupted call is on the record
    assert step.tool == "lookup"


async def test_cancelling_keeps_what_was_found() -> None:
    waiting = asyncio.Event()

    async def second(call: Call) -> ModelTurn:
        waiting.set()
        await asyncio.Event().wait()
        raise AssertionError("not cancelled")

    model = ScriptedClient([ask_tools(("lookup", {"query": "errors"})), second])
    progress = Progress()
    task = asyncio.create_task(investigate(model, limits(), progress))
    await asyncio.wait_for(waiting.wait(), 5)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [step] = progress.steps
    assert (step.status, step.output) == (StepStatus.OK, "result of errors")
    assert progress.answer == ""
