"""The Perses plugin's API, driven by the plugin's own SDK against real PersAI processes.

`compat_client/driver.mjs` is the plugin's client (the npm `llama-stack-client` 0.2 SDK's
`APIClient` subclassed as `@inecas/persai` does), its chat reducer and the time range its
`ToolCall` component charts a range query over; it runs under node with the SDK version pinned
in `compat_client/package-lock.json`, installed once into pytest's cache directory. Without node
and npm these tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import redis.asyncio as aioredis

from persai.incidents import Incident
from persai.jobs import ConversationStore
from tests.support.persai import PersAIStack
from tests.support.perses import PersesStandin
from tests.support.prometheus import PrometheusServer
from tests.support.redis import RedisServer
from tests.support.require import missing
from tests.support.scripted_model import ScriptedModel

StartStack = Callable[..., PersAIStack]
CLIENT_DIR = Path(__file__).parent / "compat_client"
DATASOURCE = "/proxy/globaldatasources/prom"
PERSES_ORIGIN = "http://perses.example:8080"
# The headers every request of the SDK carries (llama-stack-client 0.2 core.mjs).
STAINLESS_HEADERS = (
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-retry-count",
    "x-stainless-timeout",
)


@pytest.fixture(scope="session")
def sdk_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the pinned SDK installed (`npm ci`, once) and the driver beside it."""
    if not (shutil.which("node") and shutil.which("npm")):
        missing("node and npm are needed to drive the compatibility API with the plugin's SDK")
    cache: pytest.Cache | None = getattr(request.config, "cache", None)  # None: cacheprovider off
    target = cache.mkdir("npm-compat") if cache else tmp_path_factory.mktemp("npm-compat")
    lock = (CLIENT_DIR / "package-lock.json").read_bytes()
    installed = target / "node_modules" / "llama-stack-client" / "package.json"
    stamp = target / "package-lock.json"
    if not (installed.exists() and stamp.exists() and stamp.read_bytes() == lock):
        shutil.copy(CLIENT_DIR / "package.json", target / "package.json")
        shutil.copy(CLIENT_DIR / "package-lock.json", stamp)
        npm = ["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"]
        done = subprocess.run(npm, cwd=target, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            stamp.unlink()
            pytest.fail(f"npm ci failed:\n{done.stdout}\n{done.stderr}")
    shutil.copy(CLIENT_DIR / "driver.mjs", target / "driver.mjs")
    return target


def drive(sdk: Path, base_url: str, *messages: str, **options: Any) -> dict[str, Any]:
    """Run the plugin's client: a session, then each message as a turn; what it saw and sent."""
    config = {"baseURL": base_url, "datasourcePath": DATASOURCE, "messages": messages, **options}
    done = subprocess.run(
        ["node", str(sdk / "driver.mjs"), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def frames(body: str) -> list[str]:
    """The blocks of an SSE body, without the trailing empty one."""
    return [block for block in body.split("\n\n") if block]


def data_of(body: str) -> list[dict[str, Any]]:
    return [json.loads(b.removeprefix("data: ")) for b in frames(body) if b.startswith("data: ")]


def latency(model: ScriptedModel, name: str, incident: Incident, **answer: Any) -> None:
    arguments = {"query": incident.truth.query, "duration": "2h"}
    call = {"name": "execute_range_query", "arguments": arguments}
    text = {"text": "The culprit is {match}.", "match": r'service="([^"]+)"', **answer}
    model.add_scenario(name, [{"tool_calls": [call]}, text])


def test_the_plugin_sdk_shows_the_range_query_and_the_answer(
    persai_stack: StartStack,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
    sdk_client: Path,
) -> None:
    incident = incidents["latency_spike"]
    culprit = incident.truth.culprit_value
    latency(scripted_model, "compat-chat", incident)
    bad_query = {"name": "execute_range_query", "arguments": {"query": "sum(", "duration": "1h"}}
    scripted_model.add_scenario(
        "compat-bad-query", [{"tool_calls": [bad_query]}, {"text": "That query was invalid."}]
    )
    running = persai_stack()
    assert running.api is not None

    result = drive(
        sdk_client,
        running.api.url,
        "[scenario:compat-chat] Which service is slow?",
        "[scenario:compat-bad-query] And now?",
    )

    assert result["error"] is None, running.logs()
    assert [t["error"] for t in result["turns"]] == [None, None]
    user, tool, answer, user2, failed_tool, answer2 = result["messages"]
    assert user == {"role": "user", "content": "[scenario:compat-chat] Which service is slow?"}
    assert tool["toolCall"]["toolName"] == "execute_range_query"
    # the window queried, not the model's "2h" (test_the_plugin_charts_... checks it in full)
    assert set(tool["toolCall"]["args"]) == {"query", "start", "end", "step"}
    assert tool["toolCall"]["args"]["query"] == incident.truth.query
    assert culprit in tool["toolCall"]["result"]
    assert answer == {"role": "agent", "content": f"The culprit is {culprit}."}
    assert user2["role"] == "user"
    # a failed range query reports its window too: the plugin charts it over that window
    assert set(failed_tool["toolCall"]["args"]) == {"query", "start", "end", "step"}
    assert failed_tool["toolCall"]["args"]["query"] == "sum("
    assert failed_tool["content"].startswith("Error when running tool")
    assert answer2 == {"role": "agent", "content": "That query was invalid."}
    assert [t["renderError"] for t in result["turns"]] == [None, None]
    assert [set(c) for c in result["charts"]] == [{"callId", "query", "startMs", "endMs"}] * 2

    # what the SDK sent: the plugin's paths at the root of persai_url, with the SDK's headers
    session_id = result["sessionId"]
    base = running.api.url
    sent = result["requests"]
    turn_url = (
        f"{base}/session/{session_id}/turn?datasource_path=%2Fproxy%2Fglobaldatasources%2Fprom"
    )
    assert [(r["method"], r["url"]) for r in sent] == [
        ("POST", f"{base}/session"),
        ("POST", turn_url),
        ("POST", turn_url),
    ]
    assert sent[0]["body"] is None
    assert json.loads(sent[1]["body"]) == {
        "message": "[scenario:compat-chat] Which service is slow?"
    }
    for request in sent:
        assert request["headers"]["content-type"] == "application/json"
        assert request["headers"]["x-stainless-retry-count"] == "0"
        assert set(STAINLESS_HEADERS) <= set(request["headers"])

    # what came over the wire: data frames of JSON only, no event names, no [DONE]
    stream = result["streams"][0]
    assert stream["contentType"].startswith("text/event-stream")
    blocks = frames(stream["text"])
    assert all(b.startswith(("data: {", ":")) and "\n" not in b for b in blocks), blocks
    chunks = [c["event"]["payload"] for c in result["turns"][0]["chunks"]]
    assert chunks[0] == {"event_type": "turn_start", "turn_id": chunks[-1]["turn"]["turn_id"]}
    assert chunks[-1]["event_type"] == "turn_complete"
    assert chunks[-1]["turn"]["session_id"] == session_id

    with running.client() as client:
        sessions = client.get("/sessions").json()
        assert [s["session_id"] for s in sessions] == [session_id]
        jobs = client.get("/api/v1/investigations").json()
        assert jobs["total"] == 2
        assert {job["conversation_id"] for job in jobs["items"]} == {session_id}
        history = client.get(f"/api/v1/conversations/{session_id}").json()["messages"]
        assert culprit in json.dumps(history)  # the follow-up turn saw the first one


def test_sessions_are_the_callers_conversations_and_outlive_the_api(
    persai_stack: StartStack, redis_server: RedisServer
) -> None:
    running = persai_stack(workers=0)
    with running.client() as client:
        created = client.post("/session")
        assert created.status_code == 201
        assert list(created.json()) == ["session_id"]
        first = created.json()["session_id"]
        named = client.post("/session", json={"session_name": "checkout triage"})
        second = named.json()["session_id"]
        listed = client.get("/sessions").json()
        assert [s["session_id"] for s in listed] == [second, first]
        assert listed[0]["session_name"] == "checkout triage"
        assert listed[0]["started_at"]
        assert listed[0]["turns"] == []

    assert running.api is not None
    running.api.stop()
    running.start_api()
    with running.client() as client:
        assert [s["session_id"] for s in client.get("/sessions").json()] == [second, first]
        assert client.get(f"/api/v1/conversations/{first}").status_code == 200
        assert client.delete(f"/session/{first}").status_code == 204
        gone = client.delete(f"/session/{first}")
        assert gone.status_code == 404
        assert gone.json()["error"]["type"] == "not_found"
        assert [s["session_id"] for s in client.get("/sessions").json()] == [second]


def test_a_bad_turn_is_refused_before_anything_is_queued(
    persai_stack: StartStack, redis_server: RedisServer
) -> None:
    running = persai_stack(workers=0)
    foreign = asyncio.run(_conversation_of("mallory", redis_server.url))
    with running.client() as client:
        session = client.post("/session").json()["session_id"]
        turn = f"/session/{session}/turn"
        cases: list[tuple[str, dict[str, str], Any, int]] = [
            (turn, {}, {"message": "q"}, 422),
            (turn, {"datasource_path": ""}, {"message": "q"}, 400),
            (turn, {"datasource_path": "http://evil.example/api/v1"}, {"message": "q"}, 400),
            (turn, {"datasource_path": "/proxy/globaldatasources/../x"}, {"message": "q"}, 400),
            (turn, {"datasource_path": f"{DATASOURCE}?x=1"}, {"message": "q"}, 400),
            (turn, {"datasource_path": "/proxy/globaldatasources/nope"}, {"message": "q"}, 400),
            (turn, {"datasource_path": DATASOURCE}, {"message": "  "}, 422),
            (turn, {"datasource_path": DATASOURCE}, {}, 422),
            ("/session/unknown/turn", {"datasource_path": DATASOURCE}, {"message": "q"}, 404),
            (f"/session/{foreign}/turn", {"datasource_path": DATASOURCE}, {"message": "q"}, 404),
        ]
        for path, params, body, status in cases:
            answer = client.post(path, params=params, json=body)
            assert answer.status_code == status, (path, params, body, answer.text)
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["error"]["message"]
        assert client.delete(f"/session/{foreign}").status_code == 404
        assert foreign not in json.dumps(client.get("/sessions").json())
        assert client.get("/api/v1/investigations").json()["total"] == 0


async def _conversation_of(owner: str, redis_url: str) -> str:
    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        return await ConversationStore(redis).create(owner, title="not yours")
    finally:
        await redis.aclose()


def test_heartbeats_keep_a_slow_turn_alive_and_the_sdk_ignores_them(
    persai_stack: StartStack, scripted_model: ScriptedModel, sdk_client: Path
) -> None:
    heartbeat_s = 1.0
    scripted_model.add_scenario("compat-slow", [{"text": "Done.", "delay_s": heartbeat_s * 2.5}])
    running = persai_stack(PERSAI_COMPAT_HEARTBEAT_S=str(heartbeat_s))
    assert running.api is not None

    result = drive(sdk_client, running.api.url, "[scenario:compat-slow] Anything wrong?")

    assert result["turns"][0]["error"] is None, running.logs()
    assert result["messages"][-1] == {"role": "agent", "content": "Done."}
    stream = result["streams"][0]
    comments = [b for b in frames(stream["text"]) if b.startswith(":")]
    assert len(comments) >= 2
    assert max(stream["gapsMs"]) < heartbeat_s * 1000 * 2  # never silent for long


def test_a_retried_turn_reattaches_to_the_same_investigation(
    persai_stack: StartStack, scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("compat-retry", [{"text": "Once.", "delay_s": 1.5}])
    running = persai_stack()
    message = {"message": "[scenario:compat-retry] Is the queue healthy?"}
    with running.client() as client:
        session = client.post("/session").json()["session_id"]
        turn = f"/session/{session}/turn"
        params = {"datasource_path": DATASOURCE}
        bodies: list[str] = []

        def ask() -> None:
            with client.stream("POST", turn, params=params, json=message) as answer:
                assert answer.status_code == 200
                bodies.append("".join(answer.iter_text()))

        asking = [threading.Thread(target=ask) for _ in range(2)]
        for thread in asking:
            thread.start()
        for thread in asking:
            thread.join(timeout=60)
        first, second = (data_of(body) for body in bodies)
        assert first == second  # the retry sees the whole turn from its start
        assert first[-1]["event"]["payload"]["turn"]["output_message"]["content"] == "Once."
        assert client.get("/api/v1/investigations").json()["total"] == 1
        assert len(scripted_model.requests("compat-retry")) == 1

        other = client.post(turn, params=params, json={"message": "[scenario:compat-retry] Again?"})
        assert data_of(other.text)[-1]["event"]["payload"]["event_type"] == "turn_complete"
        assert client.get("/api/v1/investigations").json()["total"] == 2


def test_a_failed_turn_shows_the_reason_in_the_chat(
    persai_stack: StartStack, scripted_model: ScriptedModel, sdk_client: Path
) -> None:
    scripted_model.add_scenario("compat-broken", [{"status": 400}])
    running = persai_stack()
    assert running.api is not None

    result = drive(sdk_client, running.api.url, "[scenario:compat-broken] Why?")

    [turn] = result["turns"]
    turn_id = turn["chunks"][0]["event"]["payload"]["turn_id"]
    with running.client() as client:  # the reason is in the native API ...
        job = client.get(f"/api/v1/investigations/{turn_id}").json()
    assert job["status"] == "failed"
    assert "400" in job["error"]

    # ... and in the chat: no Llama Stack error frame (the SDK 0.2 yields it as a chunk and the
    # plugin's reducer throws on it, blanking the chat), but the reason as the turn's last text
    assert all(list(c) == ["event"] for c in turn["chunks"]), turn["chunks"]
    assert all(b.startswith(('data: {"event"', ":")) for b in frames(result["streams"][0]["text"]))
    assert (turn["error"], turn["renderError"]) == (None, None)
    notice = f"The investigation failed: {job['error']}"
    assert result["messages"] == [
        {"role": "user", "content": "[scenario:compat-broken] Why?"},
        {"role": "agent", "content": notice},
    ]
    last = turn["chunks"][-1]["event"]["payload"]
    assert last["event_type"] == "turn_complete"
    assert last["turn"]["output_message"]["content"] == notice


def test_a_cancelled_turn_keeps_what_was_shown_and_says_so(
    persai_stack: StartStack, scripted_model: ScriptedModel, sdk_client: Path
) -> None:
    look = {"name": "execute_instant_query", "arguments": {"query": "up"}}
    scripted_model.add_scenario(
        "compat-cancel",
        [
            {"text": "Let me look at what is up.", "tool_calls": [look]},
            {"text": "Late.", "delay_s": 60},
        ],
    )
    running = persai_stack()
    assert running.api is not None
    base_url, driven = running.api.url, []

    def ask() -> None:
        driven.append(drive(sdk_client, base_url, "[scenario:compat-cancel] Is it up?"))

    driver = threading.Thread(target=ask)
    driver.start()
    with running.client() as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the tool's result is in
            jobs = client.get("/api/v1/investigations").json()["items"]
            if jobs and any(step["status"] == "ok" for step in jobs[0]["steps"]):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the investigation never ran its tool:\n{running.logs()}")
        assert client.post(f"/api/v1/investigations/{jobs[0]['id']}/cancel").status_code == 200
        driver.join(timeout=60)
        assert client.get(f"/api/v1/investigations/{jobs[0]['id']}").json()["status"] == (
            "cancelled"
        )

    [result] = driven
    [turn] = result["turns"]
    assert (turn["error"], turn["renderError"]) == (None, None)
    assert all(list(c) == ["event"] for c in turn["chunks"])
    user, said, tool, notice = result["messages"]
    assert user == {"role": "user", "content": "[scenario:compat-cancel] Is it up?"}
    assert said == {"role": "agent", "content": "Let me look at what is up."}
    assert tool["toolCall"]["toolName"] == "execute_instant_query"
    assert notice == {"role": "agent", "content": "The investigation was cancelled."}


def test_cors_preflight_admits_the_perses_origin_and_the_sdk_headers(
    persai_stack: StartStack,
) -> None:
    running = persai_stack(workers=0, PERSAI_CORS_ORIGINS=PERSES_ORIGIN)
    preflight = {
        "Origin": PERSES_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ",".join(("content-type", *STAINLESS_HEADERS)),
    }
    with running.client() as client:
        answer = client.options("/session/s1/turn?datasource_path=%2Fproxy", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == PERSES_ORIGIN
        assert answer.headers["access-control-allow-credentials"] == "true"
        allowed = answer.headers["access-control-allow-headers"].lower()
        assert all(header in allowed for header in STAINLESS_HEADERS)
        assert "POST" in answer.headers["access-control-allow-methods"]

        created = client.post("/session", headers={"Origin": PERSES_ORIGIN})
        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == PERSES_ORIGIN
        assert created.headers["access-control-allow-credentials"] == "true"

        stranger = client.options(
            "/session", headers={**preflight, "Origin": "http://evil.example"}
        )
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers


class RecordingProxy:
    """Prometheus behind one more hop that keeps the parameters of every `query_range` it is
    sent (query string and form body, so GET and POST alike) with the status of the answer."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.ranges: list[dict[str, Any]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._forward(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        kind = request.headers.get("content-type") or ""
        headers = {"content-type": kind} if kind else {}
        answer = httpx.request(
            request.command, self.target + request.path, content=body, headers=headers, timeout=30
        )
        path, _, query = request.path.partition("?")
        if path.endswith("/api/v1/query_range"):
            params = dict(parse_qsl(query))
            if kind.startswith("application/x-www-form-urlencoded"):
                params |= dict(parse_qsl(body.decode()))
            self.ranges.append({**params, "status": answer.status_code})
        request.send_response(answer.status_code)
        request.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
        request.send_header("Content-Length", str(len(answer.content)))
        request.end_headers()
        request.wfile.write(answer.content)


@pytest.fixture
def recorded_prometheus(prometheus: PrometheusServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(prometheus.url) as proxy:
        yield proxy


def _epoch_s(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def test_the_plugin_charts_each_range_query_over_the_window_it_queried(
    persai_stack: StartStack,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
    recorded_prometheus: RecordingProxy,
    sdk_client: Path,
) -> None:
    query = incidents["latency_spike"].truth.query
    windows: list[tuple[dict[str, str], timedelta]] = [  # what the model asks, what it spans
        ({"start": "now-90m"}, timedelta(minutes=90)),
        ({}, timedelta(hours=1)),  # no window: the hour before now
        ({"start": "now-3h", "end": "now-1h"}, timedelta(hours=2)),
        ({"duration": "2h"}, timedelta(hours=2)),
    ]
    steps: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "execute_range_query", "arguments": {"query": query, **asked}}]}
        for asked, _ in windows
    ]
    # a query Prometheus refuses, and times the tool cannot parse (no window at all)
    bad = {"name": "execute_range_query", "arguments": {"query": "sum(", "duration": "1h"}}
    unparsed = {"name": "execute_range_query", "arguments": {"query": query, "start": "yesterday"}}
    steps.insert(1, {"tool_calls": [bad]})
    steps.insert(3, {"tool_calls": [unparsed]})
    steps.append({"text": "The culprit is {match}.", "match": r'service="([^"]+)"'})
    scripted_model.add_scenario("compat-windows", steps)
    running = persai_stack(PERSAI_DATASOURCES=f"prom={recorded_prometheus.url}")
    assert running.api is not None

    before = time.time()
    result = drive(sdk_client, running.api.url, "[scenario:compat-windows] Show me the latency")
    after = time.time()

    [turn] = result["turns"]
    assert (turn["error"], turn["renderError"]) == (None, None), running.logs()
    turn_id = turn["chunks"][0]["event"]["payload"]["turn_id"]
    with running.client() as client:
        job = client.get(f"/api/v1/investigations/{turn_id}").json()
    by_call = {step["call_id"]: step for step in job["steps"]}
    charts = result["charts"]
    assert [c["callId"] for c in charts] == [step["call_id"] for step in job["steps"]]
    asked = {json.dumps(a, sort_keys=True): length for a, length in windows}
    queried = {
        (float(r["start"]), float(r["end"]))
        for r in recorded_prometheus.ranges
        if r["status"] == 200 and r["query"] == query
    }
    assert len(queried) == len(windows)
    refused = [
        (float(r["start"]), float(r["end"]))
        for r in recorded_prometheus.ranges
        if r["status"] == 400 and r["query"] == "sum("
    ]
    assert len(refused) == 1

    drawn = set()
    failed = []
    for chart in charts:
        # every call, failed ones too, is charted over an absolute window: never the plugin's
        # fallback, which names an undeclared `duration` (ToolCall.tsx) and would throw
        assert set(chart) == {"callId", "query", "startMs", "endMs"}, chart
        step = by_call[chart["callId"]]
        model_window = {k: v for k, v in step["arguments"].items() if k != "query"}
        window = (chart["startMs"] / 1000, chart["endMs"] / 1000)
        if step["status"] == "error":
            failed.append(model_window)
            if step["data"] is None:  # the times did not parse: the hour before the call
                assert model_window == {"start": "yesterday"}
                assert chart["query"] == query
                assert window[1] - window[0] == 3600
                assert int(before) <= window[1] <= after
                continue
            # Prometheus refused it: charted over the window it was sent, as the API reports
            assert model_window == {"duration": "1h"}
            assert chart["query"] == "sum("
            assert [window] == refused
            assert window == (_epoch_s(step["data"]["start"]), _epoch_s(step["data"]["end"]))
            continue
        assert step["status"] == "ok"
        assert chart["query"] == query
        # the plugin's window is the one Prometheus was sent and the native API reports ...
        assert window in queried
        assert window == (_epoch_s(step["data"]["start"]), _epoch_s(step["data"]["end"]))
        # ... and the one the model asked for
        length = asked[json.dumps(model_window, sort_keys=True)]
        assert window[1] - window[0] == length.total_seconds()
        offset = 3600 if "end" in model_window else 0
        assert int(before) - offset <= window[1] <= after - offset
        drawn.add(window)
    assert drawn == queried
    assert failed == [{"duration": "1h"}, {"start": "yesterday"}]
    assert result["messages"][-1]["content"] == (
        f"The culprit is {incidents['latency_spike'].truth.culprit_value}."
    )


@pytest.fixture
def perses(prometheus: PrometheusServer) -> Iterator[PersesStandin]:
    standin = PersesStandin()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_user("bob", "bob-password", projects={"shop"})
    standin.add_datasource("prom", prometheus.url, project="shop")
    with standin:
        yield standin


def test_the_plugin_with_perses_cookies_works_as_its_user(
    persai_stack: StartStack,
    perses: PersesStandin,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
    sdk_client: Path,
) -> None:
    incident = incidents["latency_spike"]
    latency(scripted_model, "compat-cookies", incident)
    running = persai_stack(
        PERSAI_AUTH="true",
        PERSES_API_URL=perses.base_url,
        PERSAI_SECRET_KEY="compat-test-sealing-key-of-32-bytes-or-more",
        PERSAI_DATASOURCES="",
    )
    assert running.api is not None
    alice = perses.issue_tokens("alice").cookies
    shop = "/proxy/projects/shop/datasources/prom"

    result = drive(
        sdk_client,
        running.api.url,
        "[scenario:compat-cookies] Which service is slow?",
        datasourcePath=shop,
        cookie="; ".join(f"{name}={value}" for name, value in alice.items()),
    )

    assert result["turns"][0]["error"] is None, running.logs()
    assert result["messages"][-1]["content"] == f"The culprit is {incident.truth.culprit_value}."
    session = result["sessionId"]
    with running.client(cookies=perses.issue_tokens("bob").cookies) as bob:
        assert bob.get("/sessions").json() == []
        turn = bob.post(
            f"/session/{session}/turn", params={"datasource_path": shop}, json={"message": "q"}
        )
        assert turn.status_code == 404
        assert bob.delete(f"/session/{session}").status_code == 404
    with running.client(cookies=alice) as same_alice:
        assert [s["session_id"] for s in same_alice.get("/sessions").json()] == [session]
    with running.client() as anonymous:
        refused = anonymous.post("/session")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "unauthenticated"
