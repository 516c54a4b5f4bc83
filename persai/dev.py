"""`persai dev`: everything on one machine, with embedded defaults.

Starts what is not configured: a Redis-compatible server (PERSAI_REDIS_URL unset), a Llama
Stack server generated from the provider variables (PERSAI_LLAMA_STACK_URL unset), a worker
process, and the API in this process, each listening on the loopback interface only; with
`--demo`, also a Prometheus holding the incident scenarios' data (ending now), as datasource
`demo`, and the command to try. Ctrl-C, SIGTERM (`kill`, `timeout`, systemd) and SIGHUP (a
terminal closing) stop every child.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

import uvicorn

from persai.agent.stack_config import (
    NoModelProvider,
    configured_providers,
    stack_environment,
    tokenizer_cache,
    write_stack_config,
)
from persai.config import Settings
from persai.incidents import Incident, IncidentParams, generate_all, to_openmetrics
from persai.launcher import (
    Child,
    MissingBinary,
    free_port,
    llama_stack_argv,
    redis_server_binary,
    start_llama_stack,
    start_prometheus,
    start_redis,
)
from persai.server import create_app

log = logging.getLogger("persai.dev")

LOOPBACK = "127.0.0.1"
"""Where the embedded servers listen: Llama Stack holds the provider keys and asks for none."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEMO = "demo"
"""The datasource name of `--demo`'s Prometheus."""
DEMO_SCENARIO = "latency_spike"
"""The incident whose question `--demo` prints."""
WORKER_NOISE = ("-W", "ignore:You're running the worker with superuser privileges")
"""Celery's warning to root (as in a container), which says nothing to act on in dev."""


def run_dev(
    settings: Settings, *, host: str, port: int, state_dir: Path, demo: bool = False
) -> int:
    # The children run in sessions of their own (a Ctrl-C meant for the API must not kill
    # Redis under it): nothing but this process stops them, whatever signal stops it.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    with ExitStack() as children:
        updates: dict[str, object] = {}
        if settings.worker_metrics_host is None:
            updates["worker_metrics_host"] = LOOPBACK
        if not settings.redis_url:
            updates["redis_url"] = _embedded_redis(children, state_dir)
        if not settings.llama_stack_url:
            updates["llama_stack_url"] = _embedded_stack(children, settings, state_dir)
        incident = None
        if demo:
            url, incident = _demo_prometheus(children, state_dir)
            updates["datasources"] = {**settings.datasources, DEMO: url}
        if settings.auth and settings.perses_api_url is None:
            log.warning("PERSES_API_URL is not set: authentication is off (PERSAI_AUTH=false)")
            updates["auth"] = False
        settings = settings.model_copy(update=updates)
        _explain(settings)
        worker = Child.spawn(
            "worker",
            [sys.executable, *WORKER_NOISE, "-m", "persai.cli", "worker", "--quiet"],
            env=_environment(settings),
        )
        children.callback(worker.stop)
        log.info("worker started (pid %d)", worker.process.pid)
        log.info("API on http://%s:%d (docs at /docs); Ctrl-C stops everything", host, port)
        if incident is not None:
            _say_what_to_try(settings, incident, f"http://{host}:{port}")
        # uvicorn stops on SIGINT and SIGTERM, then raises the signal again: _stop goes on
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
        _ignore_stop_signals()
        log.info("stopping the worker and the embedded servers")
    log.info("stopped")
    return 0


def _stop(signum: int, _frame: FrameType | None) -> None:
    """Unwind run_dev, which stops every child; no second signal may cut that short (a Ctrl-C
    reaches both `uv run` and this process, a closing terminal sends SIGHUP, then SIGTERM)."""
    _ignore_stop_signals()
    log.info("%s: stopping the worker and the embedded servers", signal.Signals(signum).name)
    raise SystemExit(128 + signum)


def _ignore_stop_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _embedded_redis(children: ExitStack, state_dir: Path) -> str:
    chosen = redis_server_binary()
    if chosen is None:
        raise MissingBinary(
            "no Redis server to start: install redis-server (apt-get install redis-server) "
            "or set PERSAI_REDIS_URL"
        )
    child = start_redis(state_dir / "redis", binary=chosen[0])
    children.callback(child.stop)
    log.info(
        "Redis: embedded server on 127.0.0.1:%d (%s), data in %s",
        child.port,
        chosen[1],
        state_dir / "redis",
    )
    return f"redis://127.0.0.1:{child.port}/0"


def _embedded_stack(children: ExitStack, settings: Settings, state_dir: Path) -> str | None:
    providers = configured_providers(settings)
    if not providers:
        log.warning("%s", NoModelProvider())
        log.warning("starting without a model: /readyz says not ready until one is configured")
        return None
    port = free_port()
    stack_dir = state_dir / "stack"
    settings = settings.model_copy(update={"stack_state_dir": stack_dir})
    config = write_stack_config(settings, stack_dir / "run.yaml", port=port, host=LOOPBACK)
    env = {
        **stack_environment(settings),
        "LLAMA_STACK_LOGGING": "all=warning",
        "TIKTOKEN_CACHE_DIR": str(tokenizer_cache(stack_dir / "tiktoken")),
    }
    log.info("Llama Stack: starting on 127.0.0.1:%d with %s ...", port, ", ".join(providers))
    argv = llama_stack_argv(config, port)
    child = start_llama_stack(argv, port, env, stack_dir / "llama-stack.log")
    children.callback(child.stop)
    log.info("Llama Stack: ready (log in %s)", stack_dir / "llama-stack.log")
    return f"http://127.0.0.1:{port}"


def _demo_prometheus(children: ExitStack, state_dir: Path) -> tuple[str, Incident]:
    """Prometheus over the incident scenarios, generated afresh to end now."""
    log.info("Prometheus: generating and backfilling the incident scenarios' data ...")
    incidents = generate_all(IncidentParams(seed=1))
    work = state_dir / "demo-prometheus"
    shutil.rmtree(work, ignore_errors=True)  # yesterday's data would end yesterday
    server = start_prometheus(work, openmetrics=to_openmetrics(incidents))
    children.callback(server.stop)
    log.info(
        "Prometheus: %s, data backfilled in %.1f s (datasource %s)",
        server.url,
        server.backfill_s,
        DEMO,
    )
    [incident] = [i for i in incidents if i.scenario == DEMO_SCENARIO]
    return server.url, incident


def _say_what_to_try(settings: Settings, incident: Incident, api: str) -> None:
    datasource = f"/proxy/globaldatasources/{DEMO}"
    question = incident.truth.question
    # single quotes in JSON as \u0027: the body goes in single quotes, whole
    body = json.dumps({"question": question, "datasource": datasource}).replace("'", "\\u0027")
    ask = shlex.join(["uv", "run", "persai", "ask", "--url", api, "-d", datasource])
    curl = shlex.join(["curl", "-s", "-X", "POST", f"{api}/api/v1/investigations"])
    if not settings.llama_stack_url:
        log.warning("no model configured: set PERSAI_LLM_BASE_URL (Ollama, vLLM) to get answers")
    log.info("try:  %s %s", ask, _double_quoted(question))
    log.info("or:   %s -H 'content-type: application/json' -d '%s'", curl, body)


def _double_quoted(text: str) -> str:
    """`text` as one shell word in double quotes (what a person reads and types)."""
    for special in ("\\", '"', "$", "`"):
        text = text.replace(special, "\\" + special)
    return f'"{text}"'


def _explain(settings: Settings) -> None:
    log.info("model: %s", settings.model or "the first model Llama Stack lists (PERSAI_MODEL)")
    if settings.datasources:
        for name, url in settings.datasources.items():
            log.info("datasource /proxy/globaldatasources/%s -> %s", name, url)
    if settings.perses_api_url:
        log.info("Perses: %s (auth %s)", settings.perses_api_url, "on" if settings.auth else "off")
    elif not settings.datasources:
        log.warning("no datasource: set PERSES_API_URL or PERSAI_DATASOURCES=name=http://...")


def _environment(settings: Settings) -> dict[str, str]:
    """What a child PersAI process needs to see the same settings as this one."""
    env = {
        "PERSAI_REDIS_URL": settings.redis_url or "",
        "PERSAI_LLAMA_STACK_URL": settings.llama_stack_url or "",
        "PERSAI_AUTH": "true" if settings.auth else "false",
        "PERSAI_WORKER_METRICS_HOST": settings.worker_metrics_host or "",
    }
    return {k: v for k, v in env.items() if v} | {"PYTHONUNBUFFERED": "1"}
