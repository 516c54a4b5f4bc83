import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, Field

from persai.agent import Investigator, Limits, Progress, Turn
from persai.agent.llama import ModelTurn, ToolCall
from persai.agent.tools import ALL_TOOLS, Toolbox, ToolContext, ToolError, ToolOutput, tool
from persai.jobs import Step, StepStatus


class EchoParams(BaseModel):
    text: str = Field(description="What to echo.")
    times: int | None = Field(default=None, description="How often.")


@tool(EchoParams)
async def echo(context: ToolContext, params: EchoParams) -> ToolOutput:
    """Echo the text back."""
    return ToolOutput(params.text * (params.times or 1))


@tool(EchoParams)
async def slow(context: ToolContext, params: EchoParams) -> ToolOutput:
    """Never answers in time."""
    await asyncio.sleep(10)
    return ToolOutput("late")


def context() -> ToolContext:
    return ToolContext(prometheus=None, now=datetime.now(UTC), budget_tokens=100)  # type: ignore[arg-type]


def test_schema_is_plain_json_schema_with_optional_fields_not_required() -> None:
    schema = echo.schema()
    assert schema == {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "What to echo."},
            "times": {"type": "integer", "description": "How often."},
        },
        "required": ["text"],
    }


def test_every_tool_schema_has_items_for_arrays_and_a_description() -> None:
    for each in ALL_TOOLS:
        assert each.description
        for prop in each.schema()["properties"].values():
            assert "anyOf" not in prop
            if prop["type"] == "array":
                assert "items" in prop


async def _call(name: str, arguments: str, timeout_s: float = 1.0) -> ToolOutput:
    return await Toolbox([echo, slow], timeout_s=timeout_s).call(context(), name, arguments)


def test_call_validates_and_runs() -> None:
    assert asyncio.run(_call("echo", '{"text": "ab", "times": 2}')).text == "abab"


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("nope", "{}", "no tool named 'nope'; the tools are: echo, slow"),
        ("echo", "{not json", "not valid JSON"),
        ("echo", '{"times": "x"}', "text: Field required"),
        ("echo", "[" * 3000 + "]" * 3000, "too deep or too large"),
        ("echo", '{"text": "a", "times": ' + "9" * 5000 + "}", "too deep or too large"),
    ],
)
def test_mistakes_become_tool_errors_for_the_model(name: str, arguments: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        asyncio.run(_call(name, arguments))


def test_a_slow_tool_times_out_with_advice() -> None:
    with pytest.raises(ToolError, match="timed out after 0 s; narrow the query"):
        asyncio.run(_call("slow", '{"text": "x"}', timeout_s=0.2))


class WindowParams(BaseModel):
    query: str


@tool(WindowParams)
async def windowed(context: ToolContext, params: WindowParams) -> ToolOutput:
    """Fails after working out its window."""
    window = {"query": params.query, "start": "2026-11-24T13:00:00Z", "end": "2026-11-24T14:00:00Z"}
    raise ToolError("Prometheus rejected the request (bad_data)", data=window)


def test_a_tool_error_carries_data_for_a_ui() -> None:
    assert ToolError("plain").data is None
    failure = ToolError("with data", data={"query": "up"})
    assert (str(failure), failure.data) == ("with data", {"query": "up"})


class _OneCallModel:
    """Calls `windowed` once, then answers."""

    def __init__(self) -> None:
        self.turns = [
            ModelTurn(tool_calls=[ToolCall("c1", "windowed", '{"query": "sum("}')]),
            ModelTurn(text="That query was invalid."),
        ]

    async def stream_turn(self, **_: Any) -> ModelTurn:
        return self.turns.pop(0)

    async def list_models(self) -> list[str]:
        return ["m"]

    async def aclose(self) -> None:
        pass


class _Recorder:
    def __init__(self) -> None:
        self.results: list[Step] = []

    async def text(self, delta: str) -> None:
        pass

    async def tool_call(self, step: Step) -> None:
        pass

    async def tool_result(self, step: Step) -> None:
        self.results.append(step.model_copy())


def test_the_investigator_records_a_failed_steps_data() -> None:
    async def run() -> tuple[Progress, _Recorder]:
        investigator = Investigator(_OneCallModel(), Toolbox([windowed], timeout_s=1))
        recorder = _Recorder()
        limits = Limits(
            max_steps=3, model_call_timeout_s=5, deadline=asyncio.get_running_loop().time() + 30
        )
        turn = Turn(question="q", model="m", instructions="")
        progress = await investigator.run(turn, context(), recorder, limits, Progress())
        return progress, recorder

    progress, recorder = asyncio.run(run())

    [step] = progress.steps
    assert step.status == StepStatus.ERROR
    assert step.output == (
        "Error when running tool windowed: Prometheus rejected the request (bad_data)"
    )
    assert step.data == {
        "query": "sum(",
        "start": "2026-11-24T13:00:00Z",
        "end": "2026-11-24T14:00:00Z",
    }
    assert [r.data for r in recorder.results] == [step.data]  # what the tool_result event gets
    assert progress.answer == "That query was invalid."
