"""Real servers for the integration tests, started once per session on free loopback ports.

Redis, Prometheus (backfilled with every incident scenario), the scripted model and a real
Llama Stack in front of it are shared (and OGX instead, for modules marked `ON_EVERY_SERVER`);
PersAI's own API and worker processes are started per test by `persai_stack`, so each test sees
fresh processes (and may kill them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from persai.config import Settings
from persai.incidents import Incident, IncidentParams, generate_all, to_openmetrics
from tests.support.llama_stack import (
    ON_EVERY_SERVER,
    LlamaStack,
    ServerKind,
    llama_stack,
    require_llama_stack,
)
from tests.support.persai import MODEL, PersAIStack, wait_for_worker
from tests.support.prometheus import PrometheusServer
from tests.support.redis import RedisServer
from tests.support.scripted_model import ScriptedModel


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def incidents() -> dict[str, Incident]:
    return {incident.scenario: incident for incident in generate_all(IncidentParams(seed=7))}


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, incidents: dict[str, Incident]
) -> Iterator[PrometheusServer]:
    server = PrometheusServer.start(
        tmp_path_factory.mktemp("prometheus"), openmetrics=to_openmetrics(incidents.values())
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ScriptedModel]:
    model = ScriptedModel()
    model.start()
    yield model
    model.stop()


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModel,
) -> Iterator[LlamaStack]:
    """The shared stack in front of the scripted model: Llama Stack, or the server that
    `ON_EVERY_SERVER` passes (one at a time: pytest stops one before starting the other)."""
    server: ServerKind = getattr(request, "param", "llama-stack")
    require_llama_stack(server)
    _forget_earlier_calls(scripted_model)
    directory = tmp_path_factory.mktemp(server)
    settings = Settings(llm_base_url=scripted_model.base_url, stack_state_dir=directory)
    with llama_stack(settings, directory, server=server) as running:
        yield running


def _forget_earlier_calls(model: ScriptedModel) -> None:
    """Clear the scripted model's request log and `times` counters: on the next server, the
    same tests send the same questions again and count the requests of their scenarios."""
    state = model.app.state.scripted
    with state.lock:
        state.log.clear()
        state.failures.clear()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def persai_env(
    redis_server: RedisServer, prometheus: PrometheusServer, stack: LlamaStack
) -> dict[str, str]:
    """The environment of PersAI's processes: auth off, Prometheus as a direct datasource."""
    return {
        "PERSAI_REDIS_URL": redis_server.url,
        "PERSAI_LLAMA_STACK_URL": stack.url,
        "PERSAI_MODEL": MODEL,
        "PERSAI_AUTH": "false",
        "PERSAI_DATASOURCES": f"prom={prometheus.url}",
        "PERSAI_LOG_LEVEL": "INFO",
        "PERSAI_WORKER_METRICS_PORT": "0",  # tests that read worker metrics choose a free port
    }


@pytest.fixture
def persai_stack(
    persai_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., PersAIStack]]:
    """Start PersAI (an API and N workers) with extra environment; everything stops after."""
    started: list[PersAIStack] = []

    def start(workers: int = 1, **extra_env: str) -> PersAIStack:
        env = {**persai_env, **extra_env}
        running = PersAIStack(env, tmp_path)
        started.append(running)
        running.start_api()
        for _ in range(workers):
            running.start_worker()
        if workers:
            wait_for_worker(running.api.url if running.api else "")
        return running

    yield start
    for running in started:
        running.stop()
    if os.environ.get("PERSAI_TEST_SHOW_LOGS"):
        for running in started:
            print(running.logs())  # noqa: T201


__all__ = ["MODEL", "ON_EVERY_SERVER", "PersAIStack"]  # test modules import them from tests.support
