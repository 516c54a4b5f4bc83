"""Job events become the Llama Stack 0.2 turn chunks the Perses plugin draws its chat from."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from persai.agent import TOOL_ERROR_PREFIX
from persai.agent.timeparse import rfc3339
from persai.jobs import Event
from persai.server.compat_frames import TurnFrames

QUERY = "histogram_quantile(0.99, sum by (le, service) (rate(http_duration_bucket[5m])))"


def _events(*items: tuple[str, dict[str, Any]]) -> list[Event]:
    ms = itertools.count(1_732_456_789_000, 250)
    return [
        Event.model_validate({"id": f"{next(ms)}-0", "event": name, "data": data})
        for name, data in items
    ]


def _call(call_id: str, tool: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return "tool_call", {"call_id": call_id, "tool": tool, "arguments": arguments}


def _result(
    call_id: str, tool: str, output: str, status: str = "ok", data: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    result = {"call_id": call_id, "tool": tool, "status": status, "output": output}
    return "tool_result", {**result, "data": data}


def _translate(
    events: list[Event], question: str = "Why is checkout slow?"
) -> list[dict[str, Any]]:
    frames = TurnFrames(turn_id="job1", session_id="conv1", question=question)
    chunks = frames.start()
    for event in events:
        chunks.extend(frames.feed(event))
    return chunks


def _plugin_chat(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat as the plugin's `updateMessagesFromChunk` builds it (PersaiExplorer.tsx)."""
    messages: list[dict[str, Any]] = []

    def text(delta: str | None = None, full: str | None = None) -> None:
        if messages and messages[-1]["role"] == "agent":
            messages[-1]["content"] = messages[-1]["content"] + delta if delta else full
        else:
            messages.append({"role": "agent", "content": delta if delta else full})

    for chunk in chunks:
        payload = chunk["event"]["payload"]
        kind = payload["event_type"]
        if kind == "step_progress" and payload["delta"]["type"] == "text":
            text(delta=payload["delta"]["text"])
        elif kind == "step_complete" and payload["step_details"]["step_type"] == "tool_execution":
            step = payload["step_details"]
            for index, call in enumerate(step["tool_calls"]):
                response = step["tool_responses"][index]
                tool = {"callId": call["call_id"], "toolName": call["tool_name"]}
                tool |= {"args": call["arguments"], "result": response["content"]}
                keyed = [m.get("toolCall", {}).get("callId") for m in messages]
                found = [i for i, key in enumerate(keyed) if key == call["call_id"]]
                message = {"role": "tool", "content": response["content"], "toolCall": tool}
                if found:
                    messages[found[0]] = message
                else:
                    messages.append(message)
        elif kind == "turn_complete":
            text(full=payload["turn"]["output_message"]["content"])
    return messages


PEAK = 'service="checkout" p99 peaked at 2.3 s'
# what execute_range_query reports in its result's data: the window it sent to Prometheus
QUERIED = {
    "query": QUERY,
    "start": "2024-11-24T12:06:29Z",
    "end": "2024-11-24T14:06:29Z",
    "step_s": 60.0,
    "series": 4,
}
SUCCEEDED = (
    ("status", {"status": "queued"}),
    ("status", {"status": "running"}),
    ("message_delta", {"text": "Let me look "}),
    ("message_delta", {"text": "at the latency."}),
    _call("call-1", "execute_range_query", query=QUERY, duration="2h", step="60s"),
    _result("call-1", "execute_range_query", PEAK, data=QUERIED),
    ("message_delta", {"text": "The culprit "}),
    ("message_delta", {"text": "is checkout."}),
    ("answer", {"text": "The culprit is checkout."}),
    ("status", {"status": "succeeded"}),
    ("done", {"status": "succeeded"}),
)


def test_a_turn_with_a_range_query_shows_the_call_its_result_and_the_answer() -> None:
    chunks = _translate(_events(*SUCCEEDED))

    assert _plugin_chat(chunks) == [
        {"role": "agent", "content": "Let me look at the latency."},
        {
            "role": "tool",
            "content": PEAK,
            "toolCall": {
                "callId": "call-1",
                "toolName": "execute_range_query",
                "args": {
                    "query": QUERY,
                    "start": "2024-11-24T12:06:29Z",
                    "end": "2024-11-24T14:06:29Z",
                    "step": "60s",
                },
                "result": PEAK,
            },
        },
        {"role": "agent", "content": "The culprit is checkout."},
    ]


def test_chunks_follow_the_llama_stack_turn_shape() -> None:
    chunks = _translate(_events(*SUCCEEDED))
    payloads = [c["event"]["payload"] for c in chunks]
    kinds = [(p["event_type"], p.get("step_type")) for p in payloads]

    assert kinds == [
        ("turn_start", None),
        ("step_start", "inference"),
        ("step_progress", "inference"),
        ("step_progress", "inference"),
        ("step_complete", "inference"),
        ("step_start", "tool_execution"),
        ("step_complete", "tool_execution"),
        ("step_start", "inference"),
        ("step_progress", "inference"),
        ("step_progress", "inference"),
        ("step_complete", "inference"),
        ("turn_complete", None),
    ]
    assert payloads[0] == {"event_type": "turn_start", "turn_id": "job1"}
    step_ids = [p["step_id"] for p in payloads if "step_id" in p]
    assert len(set(step_ids)) == 3  # two inference steps and one tool step
    tool_step = payloads[6]["step_details"]
    assert tool_step["turn_id"] == "job1"
    assert tool_step["tool_calls"][0]["arguments_json"] == json.dumps(
        tool_step["tool_calls"][0]["arguments"]
    )
    turn = payloads[-1]["turn"]
    assert turn["turn_id"] == "job1"
    assert turn["session_id"] == "conv1"
    assert turn["input_messages"] == [{"role": "user", "content": "Why is checkout slow?"}]
    assert turn["output_message"] == {
        "role": "assistant",
        "content": "The culprit is checkout.",
        "stop_reason": "end_of_turn",
        "tool_calls": [],
    }
    assert turn["steps"] == []
    assert turn["started_at"] < turn["completed_at"]
    for chunk in chunks:  # every frame is JSON the SDK can parse
        assert json.loads(json.dumps(chunk)) == chunk


def test_replaying_the_same_events_gives_the_same_chunks() -> None:
    events = _events(*SUCCEEDED)
    assert _translate(events) == _translate(events)


def test_a_failed_tool_says_so_in_its_content() -> None:
    events = _events(
        _call("c", "execute_range_query", query="up{"),
        _result(
            "c", "execute_range_query", f"{TOOL_ERROR_PREFIX} execute_range_query: bad", "error"
        ),
        _call("d", "list_metrics"),
        _result("d", "list_metrics", "Prometheus is unreachable", "error"),
    )
    chat = _plugin_chat(_translate(events))
    assert [m["toolCall"]["toolName"] for m in chat] == ["execute_range_query", "list_metrics"]
    assert chat[0]["content"] == "Error when running tool execute_range_query: bad"
    assert chat[1]["content"] == "Error when running tool list_metrics: Prometheus is unreachable"


def test_results_pair_with_their_calls_by_call_id() -> None:
    events = _events(
        _call("a", "list_metrics"),
        _call("b", "execute_instant_query", query="up"),
        _result("b", "execute_instant_query", "B"),
        _result("a", "list_metrics", "A"),
    )
    steps = [
        c["event"]["payload"]["step_details"]
        for c in _translate(events)
        if c["event"]["payload"]["event_type"] == "step_complete"
    ]
    for step in steps:
        [call], [response] = step["tool_calls"], step["tool_responses"]
        assert call["call_id"] == response["call_id"]
    assert [s["tool_responses"][0]["content"] for s in steps] == ["B", "A"]
    assert steps[0]["tool_calls"][0]["arguments"] == {"query": "up"}


MODEL_FAILED = "model llm/scripted failed after 3 attempt(s): HTTP 500"


def _kinds(chunks: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    payloads = [c["event"]["payload"] for c in chunks]
    return [(p["event_type"], p.get("step_type")) for p in payloads]


def test_a_failure_shows_the_reason_after_the_text_and_ends_the_turn() -> None:
    events = _events(
        ("status", {"status": "running"}),
        ("message_delta", {"text": "Looking"}),
        ("error", {"message": MODEL_FAILED}),
        ("status", {"status": "failed"}),
        ("done", {"status": "failed"}),
    )
    chunks = _translate(events)

    # no Llama Stack {"error": ...} chunk: the plugin's reducer would throw on it
    assert all(list(c) == ["event"] for c in chunks)
    assert _kinds(chunks) == [
        ("turn_start", None),
        ("step_start", "inference"),
        ("step_progress", "inference"),
        ("step_progress", "inference"),
        ("step_complete", "inference"),
        ("turn_complete", None),
    ]
    shown = f"Looking\n\nThe investigation failed: {MODEL_FAILED}"
    assert _plugin_chat(chunks) == [{"role": "agent", "content": shown}]
    payloads = [c["event"]["payload"] for c in chunks]
    assert payloads[3]["delta"] == {
        "type": "text",
        "text": f"\n\nThe investigation failed: {MODEL_FAILED}",
    }
    assert payloads[4]["step_details"]["model_response"]["content"] == shown
    turn = payloads[-1]["turn"]
    assert turn["output_message"]["content"] == shown
    assert turn["turn_id"] == "job1"
    assert turn["started_at"] < turn["completed_at"]


def test_a_cancelled_or_silently_failed_job_still_says_so() -> None:
    cancelled = _translate(
        _events(("status", {"status": "running"}), ("done", {"status": "cancelled"}))
    )
    assert _plugin_chat(cancelled) == [
        {"role": "agent", "content": "The investigation was cancelled."}
    ]
    failed = _translate(_events(("status", {"status": "failed"}), ("done", {"status": "failed"})))
    assert _plugin_chat(failed) == [{"role": "agent", "content": "The investigation failed."}]
    assert _kinds(failed)[-1] == ("turn_complete", None)
    assert sum(k == ("turn_complete", None) for k in _kinds(failed)) == 1


def test_a_failure_after_a_tool_is_a_message_of_its_own() -> None:
    events = _events(
        ("message_delta", {"text": "Let me look."}),
        _call("c", "list_metrics"),
        _result("c", "list_metrics", "up"),
        ("error", {"message": "the investigation's credentials expired"}),
        ("status", {"status": "failed"}),
    )
    chat = _plugin_chat(_translate(events))
    assert [m["role"] for m in chat] == ["agent", "tool", "agent"]
    assert chat[0]["content"] == "Let me look."
    assert chat[2] == {
        "role": "agent",
        "content": "The investigation failed: the investigation's credentials expired",
    }


def test_a_failure_during_a_tool_call_keeps_the_text_before_it() -> None:
    # the call never got its result: the plugin shows no tool message, so the notice goes to the
    # text before the call, and turn_complete (which replaces that text) must keep it
    events = _events(
        ("message_delta", {"text": "Let me look."}),
        _call("c", "execute_range_query", query="up"),
        ("status", {"status": "cancelled"}),
    )
    chat = _plugin_chat(_translate(events))
    assert chat == [
        {"role": "agent", "content": "Let me look.\n\nThe investigation was cancelled."}
    ]


def test_a_stream_that_cannot_follow_its_job_ends_the_turn_the_same_way() -> None:
    frames = TurnFrames(turn_id="job1", session_id="conv1", question="q")
    chunks = frames.start()
    for event in _events(("message_delta", {"text": "Looking"})):
        chunks.extend(frames.feed(event))
    chunks.extend(frames.fail("the job store is unavailable"))
    assert frames.finished
    assert _plugin_chat(chunks) == [
        {
            "role": "agent",
            "content": "Looking\n\nThe investigation failed: the job store is unavailable",
        }
    ]
    assert frames.fail("again") == []
    done = TurnFrames(turn_id="j", session_id="s", question="q")
    for event in _events(("answer", {"text": "A"}), ("status", {"status": "succeeded"})):
        done.feed(event)
    assert done.fail("late") == []


def test_an_empty_delta_changes_nothing() -> None:
    # the plugin appends a delta only when it is truthy; "" would set its text to undefined
    events = _events(("message_delta", {"text": "A"}), ("message_delta", {"text": ""}))
    chunks = _translate(events)
    assert _plugin_chat(chunks) == [{"role": "agent", "content": "A"}]
    assert len(chunks) == 3  # turn_start, step_start, one step_progress


def test_nothing_follows_the_end_of_the_turn() -> None:
    frames = TurnFrames(turn_id="j", session_id="s", question="q")
    events = _events(
        ("answer", {"text": "A"}),
        ("status", {"status": "succeeded"}),
        ("done", {"status": "succeeded"}),
        ("message_delta", {"text": "late"}),
    )
    produced = [frames.feed(e) for e in events]
    assert frames.finished
    assert produced[2:] == [[], []]


def _plugin_window(args: dict[str, Any]) -> dict[str, Any]:
    """The time range the plugin charts a range query over (ToolCall.tsx, `ToolCall`): `new
    Date(start)` and `new Date(end)` when both are set, else `pastDuration: duration || "1h"`."""
    start, end = args.get("start"), args.get("end")
    if start and end:
        return {"start": datetime.fromisoformat(start), "end": datetime.fromisoformat(end)}
    return {"pastDuration": args.get("duration") or "1h"}


def _drawn(events: list[Event]) -> list[dict[str, Any]]:
    chat = _plugin_chat(_translate(events))
    return [m["toolCall"]["args"] for m in chat if m["role"] == "tool"]


@pytest.mark.parametrize(
    "arguments",
    [
        {"query": QUERY, "duration": "2h"},
        {"query": QUERY, "start": "now-2h"},
        {"query": QUERY, "start": "now-2h", "end": "now"},
        {"query": QUERY},  # the tool's default window
        {"query": QUERY, "end": "now", "duration": "2h", "step": "1m"},
    ],
)
def test_a_range_query_is_drawn_over_the_absolute_window_it_queried(
    arguments: dict[str, Any],
) -> None:
    events = _events(
        _call("c", "execute_range_query", **arguments),
        _result("c", "execute_range_query", PEAK, data=QUERIED),
    )
    [args] = _drawn(events)
    assert args == {
        "query": QUERY,
        "start": "2024-11-24T12:06:29Z",
        "end": "2024-11-24T14:06:29Z",
        "step": "60s",
    }
    window = _plugin_window(args)
    assert window["start"] == datetime.fromisoformat("2024-11-24T12:06:29+00:00")
    assert window["end"] - window["start"] == timedelta(hours=2)
    [step] = [
        c["event"]["payload"]["step_details"]
        for c in _translate(events)
        if c["event"]["payload"].get("step_type") == "tool_execution"
        and c["event"]["payload"]["event_type"] == "step_complete"
    ]
    assert json.loads(step["tool_calls"][0]["arguments_json"]) == args


def test_a_fractional_step_is_a_prometheus_duration() -> None:
    data = {**QUERIED, "step_s": 1.5}
    events = _events(
        _call("c", "execute_range_query", query=QUERY),
        _result("c", "execute_range_query", PEAK, data=data),
    )
    assert _drawn(events)[0]["step"] == "1500ms"


def test_a_failed_range_query_is_drawn_over_the_window_it_reports() -> None:
    failed = f"{TOOL_ERROR_PREFIX} execute_range_query: bad_data: parse error"
    data = {k: v for k, v in QUERIED.items() if k != "series"}
    events = _events(
        _call("c", "execute_range_query", query="sum(", duration="2h"),
        _result("c", "execute_range_query", failed, "error", data={**data, "query": "sum("}),
    )
    assert _drawn(events) == [
        {"query": "sum(", "start": QUERIED["start"], "end": QUERIED["end"], "step": "60s"}
    ]


def _called_at(event: Event) -> datetime:
    return datetime.fromtimestamp(int(event.id.split("-")[0]) / 1000, UTC).replace(microsecond=0)


@pytest.mark.parametrize(
    ("arguments", "query"),
    [
        ({"query": "up", "start": "yesterday"}, "up"),  # did not parse: no window resolved
        ({"query": "up", "start": "now-3h", "end": "now-1h"}, "up"),  # relative: not for Date()
        ({"query": "sum(", "duration": "1h"}, "sum("),
        ({"_unparsed": '{"query": "up"'}, ""),  # the model's arguments were not JSON
        ({"start": 5}, ""),
    ],
)
def test_a_range_query_without_a_reported_window_is_drawn_over_the_hour_before_it(
    arguments: dict[str, Any], query: str
) -> None:
    failed = f"{TOOL_ERROR_PREFIX} execute_range_query: cannot parse time"
    events = _events(
        ("message_delta", {"text": "Looking."}),
        _call("c", "execute_range_query", **arguments),
        _result("c", "execute_range_query", failed, "error"),
        _call("d", "execute_instant_query", query="up", time="now-5m"),
        _result("d", "execute_instant_query", "1", data={"query": "up", "time": "x"}),
    )
    called_at = _called_at(events[1])
    range_args, instant_args = _drawn(events)
    assert range_args == {
        "query": query,
        "start": rfc3339(called_at - timedelta(hours=1)),
        "end": rfc3339(called_at),
    }
    # both set, so the plugin charts them instead of taking its fallback (a ReferenceError)
    window = _plugin_window(range_args)
    assert window["end"] - window["start"] == timedelta(hours=1)
    assert instant_args == {"query": "up", "time": "now-5m"}  # other tools keep their arguments


def test_a_result_without_its_call_is_still_drawn_over_its_window() -> None:
    events = _events(_result("lost", "execute_range_query", PEAK, data=QUERIED))
    [args] = _drawn(events)
    assert (args["start"], args["end"]) == (QUERIED["start"], QUERIED["end"])
