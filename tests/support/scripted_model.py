"""A scripted OpenAI-compatible model server, for Llama Stack's `remote::vllm` provider in tests.

Scenarios are lists of steps registered by name (`POST /scenarios/{name}` or
`ScriptedModel.add_scenario`). A conversation selects one with the text `[scenario:NAME]` in a
system or user message; the step is the number of assistant turns after the last user message.
A step is a dict with any of:

- `tool_calls`: `[{"name": ..., "arguments": {...}}]`, or `"raw_arguments": "<not JSON>"`;
- `text`: the answer, streamed in several chunks; with `match` (a regex applied to the last tool
  message) `{match}` in the text becomes group 1 or the whole match, or `NO-MATCH`;
- `status`: answer this HTTP status (429, 500...) instead; with `times: N` only the first N
  calls of that step (for that question) fail, then the step answers normally;
- `delay_s` (before answering) and `chunk_delay_s` (between streamed chunks), in seconds.

Every request is recorded (`GET /requests`, `ScriptedModel.requests()`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from persai.launcher import ThreadedServer, free_port, serve_in_thread

__all__ = ["ScriptedModel", "build_app"]

logger = logging.getLogger(__name__)

Step = dict[str, Any]
_MARKER = re.compile(r"\[scenario:([\w.-]+)\]")
_ids = itertools.count(1)


def _text_of(message: dict[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def step_index(messages: list[dict[str, Any]]) -> int:
    """Assistant turns after the last user message (consecutive assistant messages count once)."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    turns, previous = 0, ""
    for message in messages[last_user + 1 :]:
        role = str(message.get("role"))
        if role == "assistant" and previous != "assistant":
            turns += 1
        previous = role
    return turns


def scenario_name(messages: list[dict[str, Any]]) -> str | None:
    """The last `[scenario:NAME]` marker in the system, developer or user messages."""
    names = [
        found
        for m in messages
        if m.get("role") in ("system", "developer", "user")
        for found in _MARKER.findall(_text_of(m))
    ]
    return names[-1] if names else None


def answer_text(step: Step, messages: list[dict[str, Any]]) -> str:
    """The step's text, with `{match}` filled from the last tool message when asked."""
    text = str(step.get("text", ""))
    if "match" not in step:
        return text
    tool_outputs = [_text_of(m) for m in messages if m.get("role") == "tool"]
    found = re.search(step["match"], tool_outputs[-1]) if tool_outputs else None
    if found is None:
        return text.replace("{match}", "NO-MATCH")
    return text.replace("{match}", found.group(1) if found.re.groups else found.group(0))


def _tool_calls(step: Step) -> list[dict[str, Any]]:
    """OpenAI `tool_calls` entries for a step."""
    calls = []
    for call in step.get("tool_calls", []):
        arguments = call.get("raw_arguments")
        if arguments is None:
            arguments = json.dumps(call.get("arguments", {}))
        calls.append(
            {
                "id": f"call_{next(_ids)}",
                "type": "function",
                "function": {"name": call["name"], "arguments": arguments},
            }
        )
    return calls


def _chunks(text: str, pieces: int = 4) -> list[str]:
    """Split text into a few chunks (words kept whole) that join back to it."""
    words = re.findall(r"\S+\s*|\s+", text)
    size = max(1, -(-len(words) // pieces))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)] or [""]


class _State:
    """Scenarios, failure counters and the request log, shared by the routes."""

    def __init__(self, scenarios: dict[str, list[Step]], models: list[str]) -> None:
        self.scenarios = dict(scenarios)
        self.models = models
        self.failures: dict[tuple[str, int, str], int] = {}
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def should_fail(self, step: Step, key: tuple[str, int, str]) -> bool:
        """Whether this call of a failing step fails (counting calls when `times` is set)."""
        if "status" not in step:
            return False
        if "times" not in step:
            return True
        with self.lock:
            self.failures[key] = self.failures.get(key, 0) + 1
            return self.failures[key] <= int(step["times"])


def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    """Token counts, roughly: four characters of prompt per token, a word of answer per token."""
    prompt = max(1, sum(len(_text_of(m)) for m in messages) // 4)
    completion = max(1, len(text.split()))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(model: str, text: str, calls: list[dict[str, Any]], usage: dict[str, int]) -> Step:
    """A non-streaming `chat.completion` body."""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": usage,
    }


async def _stream(
    model: str, text: str, calls: list[dict[str, Any]], usage: dict[str, int] | None, delay: float
) -> AsyncIterator[str]:
    """Server-sent `chat.completion.chunk` events, ending with `[DONE]`."""
    base = {"id": f"chatcmpl-{next(_ids)}", "object": "chat.completion.chunk", "model": model}
    base["created"] = int(time.time())
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in (_chunks(text) if text else [])]
    for index, call in enumerate(calls):
        function = call["function"]
        head = {"index": index, "id": call["id"], "type": "function"}
        deltas.append({"tool_calls": [{**head, "function": {"name": function["name"]}}]})
        for piece in _chunks(function["arguments"], 2):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    for delta in deltas:
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
        await asyncio.sleep(delay)
    last = {"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}
    yield f"data: {json.dumps({**base, 'choices': [last]})}\n\n"
    if usage is not None:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def _no_scenario(name: str | None) -> Step:
    """The step used when no registered scenario matches the conversation."""
    return {"text": f"No scripted scenario matches this conversation ({name or 'no marker'})."}


async def _chat(request: Request) -> Response:
    """`POST /v1/chat/completions`: the scenario's current step, streamed or not."""
    state: _State = request.app.state.scripted
    body = await request.json()
    messages: list[dict[str, Any]] = body.get("messages", [])
    name, index = scenario_name(messages), step_index(messages)
    steps = state.scenarios.get(name or "")
    step = steps[index] if steps is not None and index < len(steps) else _no_scenario(name)
    record = {"received_at": time.time(), "scenario": name, "step": index, "body": body}
    record |= {"messages": messages, "tools": body.get("tools"), "stream": bool(body.get("stream"))}
    with state.lock:
        state.log.append(record)
    logger.info("scripted model: scenario %s step %d stream=%s", name, index, record["stream"])
    if body.get("model") not in state.models:
        error = {"message": f"model {body.get('model')!r} not found", "type": "not_found"}
        return JSONResponse({"error": error}, status_code=404)
    await asyncio.sleep(float(step.get("delay_s", 0)))
    question = _text_of(next((m for m in reversed(messages) if m.get("role") == "user"), {}))
    if state.should_fail(step, (name or "", index, question)):
        status = int(step["status"])
        error = {"message": f"scripted failure {status}", "type": "scripted", "code": status}
        return JSONResponse({"error": error}, status_code=status)
    text, calls = answer_text(step, messages), _tool_calls(step)
    usage = _usage(messages, text)
    if not body.get("stream"):
        return JSONResponse(_completion(body["model"], text, calls, usage))
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    delay = float(step.get("chunk_delay_s", 0))
    chunks = _stream(body["model"], text, calls, usage if with_usage else None, delay)
    return StreamingResponse(chunks, media_type="text/event-stream")


async def _models(request: Request) -> Response:
    """`GET /v1/models`: the served models, in OpenAI's list format."""
    state: _State = request.app.state.scripted
    data = [
        {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in state.models
    ]
    return JSONResponse({"object": "list", "data": data})


async def _add_scenario(request: Request) -> Response:
    """`POST /scenarios/{name}`: register (or replace) a scenario from a JSON list of steps."""
    steps = await request.json()
    if not isinstance(steps, list):
        return JSONResponse({"error": "a scenario is a JSON list of steps"}, status_code=400)
    request.app.state.scripted.scenarios[request.path_params["name"]] = steps
    return JSONResponse({"name": request.path_params["name"], "steps": len(steps)})


async def _requests(request: Request) -> Response:
    """`GET /requests`: every chat request received so far; `DELETE` forgets them."""
    state: _State = request.app.state.scripted
    with state.lock:
        if request.method == "DELETE":
            state.log.clear()
        return JSONResponse(list(state.log))


async def _health(request: Request) -> Response:
    """`GET /health`: what vLLM serves for health checks."""
    return JSONResponse({"status": "ok"})


def build_app(
    scenarios: dict[str, list[Step]] | None = None, models: list[str] | None = None
) -> Starlette:
    """The Starlette app; `app.state.scripted` holds scenarios and the request log."""
    routes = [
        Route("/v1/chat/completions", _chat, methods=["POST"]),
        Route("/v1/models", _models, methods=["GET"]),
        Route("/scenarios/{name}", _add_scenario, methods=["POST"]),
        Route("/requests", _requests, methods=["GET", "DELETE"]),
        Route("/health", _health, methods=["GET"]),
        Route("/v1/health", _health, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.scripted = _State(scenarios or {}, models or ["scripted"])
    return app


class ScriptedModel:
    """The scripted model in a background thread: `start()` returns its `/v1` base URL."""

    def __init__(self, scenarios: dict[str, list[Step]] | None = None, *, port: int = 0) -> None:
        self.app = build_app(scenarios)
        self.port = port or free_port()
        self._server: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (ends in `/v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def add_scenario(self, name: str, steps: list[Step]) -> None:
        """Register (or replace) a scenario."""
        self.app.state.scripted.scenarios[name] = steps

    def requests(self, scenario: str | None = None) -> list[dict[str, Any]]:
        """The chat requests received so far, optionally only those of one scenario."""
        state: _State = self.app.state.scripted
        with state.lock:
            return [r for r in state.log if scenario is None or r["scenario"] == scenario]

    def start(self, timeout_s: float = 10.0) -> str:
        """Serve on 127.0.0.1:port in a thread (again after `stop()`, same port)."""
        self._server = serve_in_thread(
            self.app, port=self.port, name="scripted-model", timeout_s=timeout_s
        )
        return self.base_url

    def stop(self) -> None:
        """Stop serving; the port is free again when this returns."""
        if self._server is not None:
            self._server.stop()
        self._server = None


def main() -> None:
    """`python -m tests.support.scripted_model --port N [--scenario-file F]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--scenario-file", type=Path, help="JSON object: name -> list of steps")
    args = parser.parse_args()
    scenarios = json.loads(args.scenario_file.read_text()) if args.scenario_file else {}
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(build_app(scenarios), host=args.host, port=args.port, ws="none")


if __name__ == "__main__":
    main()
