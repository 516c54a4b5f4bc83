import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, Field

from persai.agent.tools import ALL_TOOLS, Toolbox, ToolContext, ToolError, ToolOutput, tool


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
    ],
)
def test_mistakes_become_tool_errors_for_the_model(name: str, arguments: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        asyncio.run(_call(name, arguments))


def test_a_slow_tool_times_out_with_advice() -> None:
    with pytest.raises(ToolError, match="timed out after 0 s; narrow the query"):
        asyncio.run(_call("slow", '{"text": "x"}', timeout_s=0.2))
