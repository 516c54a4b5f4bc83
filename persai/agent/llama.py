"""The model gateway: one streamed Responses API turn against Llama Stack, in neutral types.

This is the only module that imports `llama_stack_client`. Errors are mapped here:

- Llama Stack unreachable                 -> ModelUnavailable
- a model the stack does not serve        -> UnknownModel
- the provider failing (429, 5xx, stream  -> retried with bounded exponential backoff while
  `response.failed`), or a call too slow     nothing was streamed yet, then ModelProviderError
- the connection refused, reset or broken -> retried with backoff (and jitter) until the call's
  before any text or tool call came          deadline: a restarting stack costs a wait, not the
                                             job; then ModelUnavailable

Llama Stack 0.7.3 retries the upstream call itself (twice) and reports an upstream failure inside
a 200 stream as a `response.failed` event (`code: server_error`, the provider's message), so the
upstream HTTP status reaches us only as that message.

A turn is retried only while nothing of it reached `on_text` or the turn (no text, no tool
call): the request is stateless (`store: False`, the whole input sent each time, tools run by
PersAI, not the stack), so a second try repeats no effect but the provider's tokens. Once text
streamed, a broken connection fails the turn (the text was shown).

The models a stack serves are looked up through a `ModelCatalog` (catalog.py): cached, one
lookup at a time, each with its own deadline, a failure cached briefly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from llama_stack_client import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncLlamaStackClient,
)

from persai.agent.catalog import ModelCatalog
from persai.errors import ModelProviderError, ModelUnavailable, UnknownModel

__all__ = [
    "AssistantMessage",
    "Message",
    "ModelClient",
    "ModelGateway",
    "ModelTurn",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "UserMessage",
]

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 10.0
_MAX_RECONNECT_BACKOFF_S = 5.0
"""The longest wait between tries to reach a stack that refused or dropped the connection."""
_RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True, slots=True)
class UserMessage:
    """A question (or follow-up) from the user."""

    text: str


@dataclass(frozen=True, slots=True)
class AssistantMessage:
    """An earlier answer of the model."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call of the model; `arguments` is the JSON text it wrote (maybe not JSON)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool returned for the call `call_id`, as text for the model."""

    call_id: str
    output: str


Message = UserMessage | AssistantMessage | ToolCall | ToolResult


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: its name, a description it reads, a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ModelTurn:
    """One model turn: its text, the tools it called, and the tokens it used."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


class ModelClient(Protocol):
    """What the agent needs of a model server: turns, the models it serves, closing.

    `ModelGateway` is the Llama Stack one; benchmarks pass one that answers at once.
    """

    async def stream_turn(
        self,
        *,
        model: str,
        instructions: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        on_text: Callable[[str], Awaitable[None]],
        timeout_s: float | None = None,
    ) -> ModelTurn:
        """One turn, within `timeout_s` in all (None: the client's own default)."""
        ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...


class _TurnFailed(Exception):
    """The stack answered, but the turn failed (`response.failed`, an error event or status)."""

    def __init__(self, detail: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.retryable, self.status = detail, retryable, status


class _ConnectionLost(Exception):
    """No connection to the stack (refused, reset), or it broke off while the turn streamed."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _input_item(message: Message) -> dict[str, Any]:
    """A Responses API input item for a message."""
    match message:
        case UserMessage(text=text):
            return {"type": "message", "role": "user", "content": text}
        case AssistantMessage(text=text):
            return {"type": "message", "role": "assistant", "content": text}
        case ToolCall(call_id=call_id, name=name, arguments=arguments):
            return {
                "type": "function_call",
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            }
        case ToolResult(call_id=call_id, output=output):
            return {"type": "function_call_output", "call_id": call_id, "output": output}


def _tool_param(tool: ToolSpec) -> dict[str, Any]:
    """A Responses API function tool."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    }


NOT_CONFIGURED = (
    "no Llama Stack is configured: set PERSAI_LLAMA_STACK_URL to a Llama Stack (or OGX) server "
    "(`persai stack` runs one), or run `persai dev`, which starts one"
)
"""What a gateway without a URL says (models, readiness, turns)."""


def past_deadline(model: str, budget_s: float) -> ModelProviderError:
    """What a model call that outlived its deadline (`stream_turn`'s `timeout_s`) fails with."""
    return ModelProviderError(f"model {model} did not answer within {budget_s:g} s")


class ModelGateway:
    """Model turns through Llama Stack's Responses API, with retries and PersAI's errors."""

    def __init__(
        self, base_url: str, *, timeout_s: float, max_retries: int = 3, backoff_s: float = 0.5
    ) -> None:
        """`timeout_s`: a turn's deadline unless its caller gives one (`stream_turn`), and the
        timeout of the other requests (the models, the health check)."""
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._client = AsyncLlamaStackClient(base_url=base_url, timeout=timeout_s, max_retries=0)
        self.catalog = ModelCatalog(self.list_models)

    async def stream_turn(
        self,
        *,
        model: str,
        instructions: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        on_text: Callable[[str], Awaitable[None]],
        timeout_s: float | None = None,
    ) -> ModelTurn:
        """Run one turn, passing text deltas to `on_text` as they arrive.

        `tools=[]` asks for an answer without tools. While nothing was streamed yet, retries
        429/5xx and failed responses (at most `max_retries` times) and a connection refused or
        broken (a restarting stack: until the deadline), all within `timeout_s` in all (None:
        the gateway's `timeout_s`). This deadline is the call's only one: the HTTP requests
        of a turn have no timeout of their own.
        """
        request: dict[str, Any] = {
            "model": model,
            "instructions": instructions,
            "input": [_input_item(m) for m in messages],
            "stream": True,
            "store": False,
        }
        if tools:
            request["tools"] = [_tool_param(t) for t in tools]
        self._check_configured()
        budget_s = self.timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        failures = reconnects = 0
        while True:
            turn = ModelTurn()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._attempt(request, turn, on_text)
                return turn
            except _TurnFailed as failure:
                delay = await self._after_failure(
                    model, failure, turn, failures, deadline - loop.time()
                )
                failures += 1
            except _ConnectionLost as lost:
                delay = self._after_lost(lost, turn, reconnects, deadline - loop.time())
                reconnects += 1
            except TimeoutError as exc:
                raise past_deadline(model, budget_s) from exc
            await asyncio.sleep(delay)

    async def _after_failure(
        self, model: str, failure: _TurnFailed, turn: ModelTurn, failures: int, remaining_s: float
    ) -> float:
        """The wait before trying a failed turn again; raises when it is not tried again (nor
        when the wait would outlast the deadline: the provider's failure is the news)."""
        if await self._is_unknown(model, failure):
            raise UnknownModel(f"model {model!r} is not served by Llama Stack") from failure
        delay = min(self.backoff_s * 2.0**failures, _MAX_BACKOFF_S)
        last = failures == self.max_retries or delay >= remaining_s
        if not failure.retryable or _streamed(turn) or last:
            raise _provider_error(model, failure, failures + 1) from failure
        logger.warning(
            "model %s failed (%s), retry %d/%d in %.1f s",
            model, failure.detail, failures + 1, self.max_retries, delay,
        )  # fmt: skip
        return delay

    def _after_lost(
        self, lost: _ConnectionLost, turn: ModelTurn, reconnects: int, remaining_s: float
    ) -> float:
        """The wait before trying again to reach the stack: growing, with jitter, and at most
        half the time left, so that the tries go on until close to the deadline. Raises once
        less than `backoff_s` is left, or once the turn had streamed (what was shown cannot
        be taken back)."""
        cause = type(lost.cause.__cause__ or lost.cause).__name__
        if _streamed(turn):
            raise ModelUnavailable(
                f"the connection to Llama Stack broke while the model was answering: {cause}"
            ) from lost
        if remaining_s < self.backoff_s:
            raise _unreachable(lost.cause) from lost
        # jitter: the jobs that lost the stack at the same moment do not all come back at once
        backoff = min(self.backoff_s * 2.0**reconnects, _MAX_RECONNECT_BACKOFF_S)
        delay = min(backoff * random.uniform(0.5, 1.0), remaining_s / 2)
        logger.warning(
            "Llama Stack unreachable (%s), try %d in %.1f s", cause, reconnects + 2, delay
        )
        return delay

    async def _attempt(
        self,
        request: dict[str, Any],
        turn: ModelTurn,
        on_text: Callable[[str], Awaitable[None]],
    ) -> None:
        """One streamed call, filling `turn`; raises _TurnFailed or PersAI's errors."""
        try:
            # no timeout of its own: the turn's deadline (stream_turn) bounds it
            stream = await self._client.responses.create(**request, timeout=None)
            async with stream:
                async for event in stream:
                    await self._handle(event, turn, on_text)
        except (APITimeoutError, httpx.TimeoutException) as exc:
            raise TimeoutError(str(exc)) from exc
        except APIConnectionError as exc:  # refused, reset or closed before the response began
            raise _ConnectionLost(exc) from exc
        except httpx.TransportError as exc:  # the stream broke off (the SDK passes httpx's on)
            raise _ConnectionLost(exc) from exc
        except APIStatusError as exc:
            retryable = exc.status_code in _RETRYABLE_STATUS
            raise _TurnFailed(_detail(exc), retryable=retryable, status=exc.status_code) from exc
        except APIError as exc:  # an `error` event inside the stream
            raise _TurnFailed(exc.message, retryable=True) from exc

    @staticmethod
    async def _handle(
        event: Any, turn: ModelTurn, on_text: Callable[[str], Awaitable[None]]
    ) -> None:
        """Fold one stream event into the turn."""
        kind = event.type
        if kind == "response.output_text.delta":
            turn.text += event.delta
            await on_text(event.delta)
        elif kind == "response.output_item.done" and event.item.type == "function_call":
            item = event.item
            turn.tool_calls.append(ToolCall(item.call_id, item.name, item.arguments))
        elif kind in ("response.completed", "response.incomplete"):
            usage = event.response.usage
            if usage is not None:
                turn.input_tokens, turn.output_tokens = usage.input_tokens, usage.output_tokens
            if kind == "response.incomplete":
                logger.warning("model turn incomplete: %s", event.response.incomplete_details)
        elif kind == "response.failed":
            error = event.response.error
            detail = f"{error.code}: {error.message}" if error else "response failed"
            raise _TurnFailed(detail, retryable=True)

    async def _is_unknown(self, model: str, failure: _TurnFailed) -> bool:
        """Whether a failure says the model is not found and the stack indeed lacks it."""
        if failure.status not in (400, 404) and "not found" not in failure.detail.lower():
            return False
        try:
            return model not in await self.list_models()
        except ModelUnavailable:
            return False

    async def models(self) -> list[str]:
        """`list_models` through the catalog: cached, one lookup at a time (the API's way)."""
        return await self.catalog.models()

    async def list_models(self) -> list[str]:
        """Ids of the LLMs the stack serves (`provider_id/provider_model_id`)."""
        self._check_configured()
        try:
            models = await self._client.models.list()
        except APIConnectionError as exc:
            raise _unreachable(exc) from exc
        except APIStatusError as exc:
            raise ModelUnavailable(
                f"Llama Stack could not list models: HTTP {exc.status_code}"
            ) from exc
        return [m.id for m in models if (m.custom_metadata or {}).get("model_type", "llm") == "llm"]

    async def ping(self) -> None:
        """Raise ModelUnavailable unless the stack answers its health check."""
        self._check_configured()
        try:
            await self._client.inspect.health()
        except (APIConnectionError, APIStatusError) as exc:
            raise _unreachable(exc) from exc

    def _check_configured(self) -> None:
        if not self.base_url:
            raise ModelUnavailable(NOT_CONFIGURED)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()


def _streamed(turn: ModelTurn) -> bool:
    """Whether any of the turn reached the caller (text passed on, a tool call made)."""
    return bool(turn.text or turn.tool_calls)


def _unreachable(exc: Exception) -> ModelUnavailable:
    """Llama Stack down, named with the kind of failure but not its address (the message
    reaches clients and /readyz; the operator knows PERSAI_LLAMA_STACK_URL)."""
    cause = exc.__cause__ or exc
    return ModelUnavailable(f"Llama Stack is unreachable: {type(cause).__name__}")


def _provider_error(model: str, failure: _TurnFailed, attempts: int) -> ModelProviderError:
    """The error for a provider that kept failing, naming provider, model and status."""
    provider = model.split("/", 1)[0] if "/" in model else "unknown provider"
    status = f"HTTP {failure.status}: " if failure.status else ""
    return ModelProviderError(
        f"model provider {provider!r} failed for model {model!r} after {attempts} "
        f"attempt(s): {status}{failure.detail}"
    )


def _detail(exc: APIStatusError) -> str:
    """The stack's error message, without the body dump of the SDK's text."""
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body
        return str(detail)
    return exc.message
