"""What an operator relies on: metrics, readiness, logs, and the terminal client."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.auth import metric
from tests.support.jobs import DATASOURCE, submit
from tests.support.persai import PersAIProcess, PersAIStack, wait_for_job
from tests.support.ports import free_port, wait_for_port
from tests.support.scripted_model import ScriptedModel

RANGE_QUERY = {"name": "execute_range_query", "arguments": {"query": "up", "duration": "1h"}}


def test_metrics_after_an_investigation(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("metrics", [{"tool_calls": [RANGE_QUERY]}, {"text": "Fine."}])
    port = free_port()
    running = persai_stack(PERSAI_WORKER_METRICS_PORT=str(port))
    with running.client() as client:
        job = wait_for_job(client, submit(client, "metrics"))
        assert job["status"] == "succeeded"
        api = client.get("/metrics")
    assert api.status_code == 200
    assert api.headers["content-type"].startswith("text/plain")
    wait_for_port(port)
    worker = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert metric(worker, "persai_investigations_total", outcome="succeeded") == 1
    assert metric(worker, "persai_tool_calls_total", tool="execute_range_query", outcome="ok") == 1
    assert metric(worker, "persai_model_calls_total", model="llm/scripted") == 2
    assert metric(worker, "persai_model_tokens_total", model="llm/scripted", direction="input") > 0
    assert metric(worker, "persai_queue_wait_seconds_count") == 1
    assert metric(worker, "persai_investigation_duration_seconds_count", outcome="succeeded") == 1


def test_readiness_says_what_is_missing(
    persai_stack: Callable[..., PersAIStack],
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    running = persai_stack(workers=0, PERSAI_LLAMA_STACK_URL=closed)
    with running.client() as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"] == {"ok": True}
    assert checks["llama_stack"]["ok"] is False
    assert "Llama Stack" in checks["llama_stack"]["reason"]
    assert checks["worker"] == {"ok": False, "reason": "no worker heartbeat in the last 30 s"}


def test_what_is_down_is_named_but_not_where(tmp_path: Path) -> None:
    """Error bodies and /readyz reach clients: they name the dependency and the failure, never
    its address (Redis's own message is "Error 111 connecting to 127.0.0.1:PORT")."""
    redis_port, stack_port = free_port(), free_port()  # nothing listens on either
    env = {
        "PERSAI_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PERSAI_LLAMA_STACK_URL": f"http://127.0.0.1:{stack_port}",
        "PERSAI_AUTH": "false",
        "PERSAI_DATASOURCES": "prom=http://prometheus.invalid:9090",
    }
    api = PersAIProcess("api", env, tmp_path / "api.log").wait_ready()
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            ready = client.get("/readyz")
            listed = client.get("/api/v1/investigations")
            submitted = client.post(
                "/api/v1/investigations", json={"question": "q", "datasource": DATASOURCE}
            )
    finally:
        api.stop()

    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert "Redis is unreachable" in checks["redis"]["reason"]
    assert "Llama Stack is unreachable" in checks["llama_stack"]["reason"]
    for answer in (listed, submitted):
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["type"] == "store_unavailable"
        assert "Redis" in answer.json()["error"]["message"]
    for answer in (ready, listed, submitted):
        for address in ("127.0.0.1", str(redis_port), str(stack_port)):
            assert address not in answer.text


def test_ready_when_everything_is_up(persai_stack: Callable[..., PersAIStack]) -> None:
    running = persai_stack()
    with running.client() as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


def test_json_logs_carry_request_and_job_ids(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario(
        "json-logs",
        [{"tool_calls": [{"name": "execute_range_query", "arguments": {}}]}, {"text": "ok"}],
    )
    running = persai_stack(PERSAI_LOG_FORMAT="json")
    with running.client() as client:
        job_id = submit(client, "json-logs")
        job = wait_for_job(client, job_id)
        missing = client.get("/api/v1/investigations/nope", headers={"X-Request-ID": "req-42"})
    assert job["status"] == "succeeded"
    assert missing.headers["x-request-id"] == "req-42"
    ours = []
    for process in [running.api, *running.workers]:
        assert process is not None
        for line in process.log().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry["logger"].startswith(("persai.runtime.runner", "persai.agent")):
                    ours.append(entry)
    assert ours, "the worker logged nothing of its own"
    assert all(entry.get("job_id") == job_id for entry in ours)
    assert any("invalid arguments" in entry["message"] for entry in ours)


def run_in_pty(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env, start_new_session=True
    )
    os.close(terminal)
    return process, controller


def read_until(controller: int, wanted: str, timeout_s: float = 60.0) -> str:
    seen = b""
    deadline = time.monotonic() + timeout_s
    while wanted.encode() not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{wanted!r} not seen in:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([controller], [], [], remaining)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the program exited and the terminal closed
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_ask_from_a_terminal(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario(
        "ask", [{"tool_calls": [RANGE_QUERY]}, {"text": "# Verdict\nAll `up` series are 1."}]
    )
    running = persai_stack()
    assert running.api is not None
    argv = [sys.executable, "-m", "persai.cli", "ask", "[scenario:ask] Is everything up?",
            "-d", DATASOURCE, "--url", running.api.url]  # fmt: skip
    process, controller = run_in_pty(argv, {**os.environ, "PERSAI_LOG_LEVEL": "WARNING"})
    output = read_until(controller, "succeeded")
    assert process.wait(10) == 0
    assert "execute_range_query(query='up', duration='1h')" in output
    assert "\x1b[1mVerdict" in output  # the heading, bold on a terminal
    assert "All " in output
    assert "✓" in output


def test_ctrl_c_in_ask_offers_to_cancel(
    persai_stack: Callable[..., PersAIStack], scripted_model: ScriptedModel
) -> None:
    scripted_model.add_scenario("ask-cancel", [{"text": "too late", "delay_s": 30}])
    running = persai_stack()
    assert running.api is not None
    argv = [sys.executable, "-m", "persai.cli", "ask", "[scenario:ask-cancel] Slow?",
            "-d", DATASOURCE, "--url", running.api.url]  # fmt: skip
    process, controller = run_in_pty(argv, {**os.environ, "PERSAI_LOG_LEVEL": "WARNING"})
    read_until(controller, "running")
    process.send_signal(signal.SIGINT)
    read_until(controller, "Cancel the investigation? [y/N]")
    os.write(controller, b"y\n")
    output = read_until(controller, "cancelled")
    assert process.wait(10) == 1
    assert "cancel asked" in output
