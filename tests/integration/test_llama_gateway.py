"""The model gateway against a real Llama Stack in front of the scripted model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from persai.agent.llama import ModelGateway, ToolResult, ToolSpec, UserMessage
from persai.config import Settings
from persai.errors import ModelProviderError, ModelUnavailable, UnknownModel
from tests.support.llama_stack import LlamaStack, llama_stack, require_llama_stack
from tests.support.ports import free_port
from tests.support.scripted_model import ScriptedModel

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

logger = logging.getLogger(__name__)

MODEL = "llm/scripted"
PEAK_TOOL = ToolSpec(
    name="get_peak",
    description="The peak of a metric.",
    parameters={"type": "object", "properties": {"metric": {"type": "string"}}},
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    scripted = ScriptedModel()
    scripted.start()
    yield scripted
    scripted.stop()


@pytest.fixture(scope="module")
def stack(model: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaStack]:
    require_llama_stack()
    directory = tmp_path_factory.mktemp("llama-stack")
    settings = Settings(llm_base_url=model.base_url, stack_state_dir=directory / "state")
    with llama_stack(settings, directory) as running:
        logger.info("llama stack started in %.2f s", running.startup_s)
        yield running


@pytest.fixture
async def gateway(stack: LlamaStack) -> AsyncIterator[ModelGateway]:
    gateway = ModelGateway(stack.url, timeout_s=20, max_retries=2, backoff_s=0.05)
    yield gateway
    await gateway.aclose()


class Collector:
    """An `on_text` callback that keeps the deltas."""

    def __init__(self) -> None:
        self.deltas: list[str] = []

    async def __call__(self, delta: str) -> None:
        self.deltas.append(delta)


async def _ask(
    gateway: ModelGateway, scenario: str, **overrides: object
) -> tuple[object, Collector]:
    collector = Collector()
    arguments: dict[str, object] = {
        "model": MODEL,
        "instructions": f"You look at metrics. [scenario:{scenario}]",
        "messages": [UserMessage("What was the CPU peak?")],
        "tools": [PEAK_TOOL],
        "on_text": collector,
    }
    turn = await gateway.stream_turn(**(arguments | overrides))  # type: ignore[arg-type]
    return turn, collector


async def test_text_deltas_arrive_in_order(gateway: ModelGateway, model: ScriptedModel) -> None:
    answer = "The CPU peaked at 93 percent on node-2 shortly after ten o'clock UTC."
    model.add_scenario("stream", [{"text": answer}])
    turn, collector = await _ask(gateway, "stream")
    assert len(collector.deltas) > 1
    assert "".join(collector.deltas) == answer == turn.text  # type: ignore[attr-defined]
    assert turn.tool_calls == []  # type: ignore[attr-defined]
    assert turn.input_tokens > 0  # type: ignore[attr-defined]
    assert turn.output_tokens > 0  # type: ignore[attr-defined]


async def test_tool_call_then_answer_quoting_the_tool_output(
    gateway: ModelGateway, model: ScriptedModel
) -> None:
    model.add_scenario(
        "tool",
        [
            {"tool_calls": [{"name": "get_peak", "arguments": {"metric": "cpu"}}]},
            {"text": "The peak was {match}.", "match": r"peak=(\d+)"},
        ],
    )
    first, _ = await _ask(gateway, "tool")
    [call] = first.tool_calls  # type: ignore[attr-defined]
    assert (call.name, call.arguments) == ("get_peak", '{"metric": "cpu"}')
    history = [UserMessage("What was the CPU peak?"), call, ToolResult(call.call_id, "peak=93")]
    second, _ = await _ask(gateway, "tool", messages=history, tools=[])
    assert second.text == "The peak was 93."  # type: ignore[attr-defined]
    requests = model.requests("tool")
    assert [r["step"] for r in requests] == [0, 1]
    assert requests[0]["tools"][0]["function"]["name"] == "get_peak"
    assert not requests[1]["tools"]  # the forced final answer offers no tools


async def test_malformed_arguments_and_unknown_tools_reach_the_caller(
    gateway: ModelGateway, model: ScriptedModel
) -> None:
    model.add_scenario("bad", [{"tool_calls": [{"name": "rm_rf", "raw_arguments": "{oops"}]}])
    turn, _ = await _ask(gateway, "bad")
    assert [(c.name, c.arguments) for c in turn.tool_calls] == [("rm_rf", "{oops")]  # type: ignore[attr-defined]


async def test_rate_limited_once_then_answers(gateway: ModelGateway, model: ScriptedModel) -> None:
    # Llama Stack retries the upstream twice itself; three 429s reach PersAI's own retry.
    model.add_scenario("limited", [{"status": 429, "times": 3, "text": "Recovered."}])
    turn, _ = await _ask(gateway, "limited")
    assert turn.text == "Recovered."  # type: ignore[attr-defined]
    assert len(model.requests("limited")) == 4


async def test_provider_errors_end_as_model_provider_error(
    gateway: ModelGateway, model: ScriptedModel
) -> None:
    model.add_scenario("broken", [{"status": 500}])
    with pytest.raises(ModelProviderError, match=r"'llm'.*llm/scripted.*500") as raised:
        await _ask(gateway, "broken")
    assert "3 attempt" in raised.value.message


async def test_unknown_model(gateway: ModelGateway) -> None:
    for name in ("nobody/nothing", "llm/not-served"):
        with pytest.raises(UnknownModel, match=name):
            await _ask(gateway, "none", model=name)


async def test_list_models_and_ping(gateway: ModelGateway) -> None:
    await gateway.ping()
    assert await gateway.list_models() == [MODEL]


async def test_cancellation_propagates(gateway: ModelGateway, model: ScriptedModel) -> None:
    model.add_scenario("slow", [{"text": "too late", "delay_s": 5}])
    task = asyncio.create_task(_ask(gateway, "slow"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    turn, _ = await _ask(gateway, "stream2", messages=[UserMessage("hi")])
    assert "No scripted scenario" in turn.text  # type: ignore[attr-defined]


async def test_llama_stack_down_is_model_unavailable() -> None:
    gateway = ModelGateway(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    try:
        with pytest.raises(ModelUnavailable):
            await gateway.ping()
        with pytest.raises(ModelUnavailable):
            await _ask(gateway, "any")
    finally:
        await gateway.aclose()


async def test_provider_down(gateway: ModelGateway, model: ScriptedModel) -> None:
    model.add_scenario("down", [{"text": "back"}])
    model.stop()
    try:
        with pytest.raises((ModelProviderError, ModelUnavailable), match="llm"):
            await _ask(gateway, "down")
    finally:
        model.start()
    turn, _ = await _ask(gateway, "down")
    assert turn.text == "back"  # type: ignore[attr-defined]
