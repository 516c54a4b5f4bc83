"""What a tool is: a typed async function the model can call, with a schema and a docstring.

A tool never raises through the loop: whatever goes wrong becomes a `ToolError` whose message is
written for the model, so that it can correct itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from persai.jobs import TimeRange

if TYPE_CHECKING:
    from persai.agent.tools.upstream import UpstreamAPI


class ToolError(Exception):
    """A failure to show the model; its message says what went wrong and what to try.

    `data`, when set, is structure for a UI like `ToolOutput.data`: what the call had worked
    out before it failed (a range query's window), stored beside the message.
    """

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data


@dataclass(frozen=True)
class ToolOutput:
    text: str
    """What the model sees: compact, within the token budget."""
    data: dict[str, Any] | None = None
    """Structure for a UI (query, range, step), stored beside the text."""


@dataclass
class ToolContext:
    """What the tools of one investigation share: clients bound to the user, time, budgets."""

    prometheus: UpstreamAPI
    """The investigation's datasource (Prometheus HTTP API), as the user."""
    now: datetime
    budget_tokens: int
    time_range: TimeRange | None = None
    perses: UpstreamAPI | None = None
    """Perses's own API as the user, when PersAI runs with Perses."""


ToolFunction = Callable[[ToolContext, Any], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: type[BaseModel]
    run: ToolFunction

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the parameters, in the plain form every model provider accepts."""
        return _plain(self.params.model_json_schema())


def tool(params: type[BaseModel]) -> Callable[[ToolFunction], Tool]:
    """Make a Tool of an async function; its name and docstring are what the model sees."""

    def wrap(function: ToolFunction) -> Tool:
        doc = " ".join((function.__doc__ or "").split())
        return Tool(function.__name__, doc, params, function)

    return wrap


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop titles and nulls: `x: str | None = None` becomes an optional string."""
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        plain = {k: v for k, v in options[0].items() if k != "title"}
        plain.update({k: v for k, v in prop.items() if k in ("description", "enum", "examples")})
        if prop.get("default") is not None:
            plain["default"] = prop["default"]
        properties[name] = plain
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if schema.get("required"):
        result["required"] = schema["required"]
    return result


class Toolbox:
    """The tools of an investigation, called by name with the model's JSON arguments."""

    def __init__(self, tools: Iterable[Tool], *, timeout_s: float) -> None:
        self.tools = {t.name: t for t in tools}
        self._timeout_s = timeout_s

    def parse(self, name: str, arguments: str) -> tuple[Tool, BaseModel]:
        """The tool and its validated parameters, or a ToolError telling the model its mistake."""
        tool_ = self.tools.get(name)
        if tool_ is None:
            known = ", ".join(sorted(self.tools))
            raise ToolError(f"there is no tool named {name!r}; the tools are: {known}")
        try:
            raw = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ToolError(f"the arguments of {name} are not valid JSON: {exc}") from exc
        except (ValueError, RecursionError) as exc:  # nested too deep, an integer too long
            raise ToolError(f"the arguments of {name} are JSON too deep or too large") from exc
        try:
            return tool_, tool_.params.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for {name}: {problems}") from exc

    async def call(self, context: ToolContext, name: str, arguments: str) -> ToolOutput:
        tool_, params = self.parse(name, arguments)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                return await tool_.run(context, params)
        except TimeoutError as exc:
            elapsed = time.monotonic() - started
            raise ToolError(
                f"{name} timed out after {elapsed:.0f} s; narrow the query (fewer series, a "
                "shorter range or a coarser step)"
            ) from exc
