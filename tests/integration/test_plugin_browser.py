"""The Perses plugin in headless Chromium against a real PersAI.

The built plugin (plugin/dist) is loaded by the module federation runtime of
@perses-dev/plugin-system into a host page (plugin/e2e) that gives it what the Perses UI gives
its plugins, beside the Prometheus and TimeSeriesChart plugins as Perses serves them. PersAI runs
with authentication through the Perses stand-in (API, worker, Redis, Llama Stack with the
scripted model, Prometheus with the incident data); the browser holds alice's Perses cookies.
One question is answered (tool call, chart drawn, culprit named, a reload mid-run resumed) and
another cancelled. The screenshot is left at .persai/artifacts/plugin.png.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from persai.incidents import Incident
from tests.support.persai import PersAIStack
from tests.support.perses import PersesStandin, User
from tests.support.plugin_host import PLUGIN_DIR, PluginHost, require_plugin_build
from tests.support.prometheus import PrometheusServer
from tests.support.scripted_model import ScriptedModel

ARTIFACTS = Path(__file__).resolve().parents[2] / ".persai" / "artifacts"
SECRET_KEY = "plugin-browser-test-secret-key-0123456789"
DATASOURCE = "/proxy/projects/shop/datasources/prom"


class SavingPerses(PersesStandin):
    """The stand-in, taking dashboards as Perses's create endpoint does at v0.54.0: the
    project of the path fills an empty `metadata.project` and a different one is a 400
    (internal/api/toolbox/toolbox.go bind -> validateMetadataVersusParameter); a name already
    taken is a 409 "document already exists" (internal/api/interface/error.go ConflictError);
    no create permission is a 403 "missing 'create' permission …" (toolbox.go checkPermission).
    The right to create is the right to read here, the stand-in's one permission."""

    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []
        super().__init__()

    def _routes(self) -> list[BaseRoute]:
        create = self._authed("create_dashboard", self._create_dashboard)
        route = Route("/api/v1/projects/{project}/dashboards", create, methods=["POST"])
        return [route, *super()._routes()]

    async def _create_dashboard(self, request: Request, user: User) -> Response:
        project = request.path_params["project"]
        if not user.can_read(project):
            message = f"missing 'create' permission in '{project}' project for 'Dashboard' kind"
            return JSONResponse({"message": message}, status_code=403)
        dashboard = await request.json()
        metadata = dashboard.setdefault("metadata", {})
        if not metadata.get("project"):
            metadata["project"] = project
        if dashboard.get("kind") != "Dashboard" or metadata["project"] != project:
            message = "metadata.project and the project name in the http path request don't match"
            return JSONResponse({"message": message}, status_code=400)
        if any(d["metadata"]["name"] == metadata.get("name") for d in self.saved):
            return JSONResponse({"message": "document already exists"}, status_code=409)
        self.saved.append(dashboard)
        return JSONResponse(dashboard)


@pytest.fixture
def perses(prometheus: PrometheusServer) -> Iterator[SavingPerses]:
    standin = SavingPerses()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_datasource("prom", prometheus.url, project="shop")  # as the Perses UI saves it
    with standin:
        yield standin


@pytest.fixture
def host(perses: PersesStandin) -> Iterator[PluginHost]:
    require_plugin_build()
    modules = PLUGIN_DIR / "node_modules" / "@perses-dev"
    plugins = {
        "PersAI": PLUGIN_DIR / "dist",
        "Prometheus": modules / "prometheus-plugin",
        "TimeSeriesChart": modules / "timeseries-chart-plugin",
    }
    running = PluginHost(perses.base_url, plugins, PLUGIN_DIR / "e2e" / "dist")
    running.start()
    yield running
    running.stop()


def test_a_person_asks_watches_reloads_and_cancels_in_the_plugin(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
    perses: SavingPerses,
    host: PluginHost,
) -> None:
    latency = incidents["latency_spike"]
    culprit = latency.truth.culprit_value
    assert culprit
    query = {"query": latency.truth.query, "duration": "2h"}
    scripted_model.add_scenario(
        "plugin-browser",
        [
            {"tool_calls": [{"name": "execute_range_query", "arguments": query}]},
            # slow enough that the page is reloaded while it runs
            {"text": "The culprit is **{match}**.", "match": r'service="([^"]+)"', "delay_s": 4},
        ],
    )
    scripted_model.add_scenario("plugin-slow", [{"text": "too late", "delay_s": 60}])
    running = persai_stack(
        PERSAI_AUTH="true",
        PERSES_API_URL=perses.base_url,
        PERSAI_SECRET_KEY=SECRET_KEY,
        PERSAI_DATASOURCES="",
        PERSAI_CORS_ORIGINS=host.url,
    )
    assert running.api is not None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "plugin.png"
    screenshot.unlink(missing_ok=True)
    env = {
        **os.environ,
        "HOST_URL": host.url,
        "PERSAI_URL": running.api.url,
        "COOKIES": json.dumps(perses.issue_tokens("alice").cookies),
        "QUESTION": "[scenario:plugin-browser] Which service got slow?",
        "SLOW_QUESTION": "[scenario:plugin-slow] And what else?",
        "SCREENSHOT": str(screenshot),
    }
    driven = subprocess.run(
        ["node", "e2e/drive.mjs"],
        cwd=PLUGIN_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert driven.returncode == 0, driven.stderr
    seen = json.loads(driven.stdout.strip().splitlines()[-1])
    assert "error" not in seen, f"{seen}\n{running.logs()}"

    assert seen["statusBeforeReload"] == "running"
    assert f"persai={seen['id']}" in seen["urlBeforeReload"]
    assert seen["statusAfterReload"] in ("running", "succeeded")
    assert seen["finalStatus"] == "succeeded"
    assert culprit in seen["answer"]
    assert "execute_range_query" in seen["toolCall"]
    assert latency.truth.query in seen["toolCall"]
    assert seen["series"] > 0, "the chart has no series"
    assert seen["inkedPixels"] > 1000, "the chart's canvas is blank"
    assert latency.truth.query in seen["chartCaption"]
    assert seen["cancelled"] is True
    (saved,) = perses.saved  # "Open as dashboard", saved with alice's own cookies
    assert saved["metadata"] == {"name": f"persai-{seen['id'][:12]}", "project": "shop"}
    (panel,) = saved["spec"]["panels"].values()
    assert panel["spec"]["queries"][0]["spec"]["plugin"]["spec"]["query"] == latency.truth.query
    assert seen["dashboardLink"].startswith(
        f"/projects/shop/dashboards/{saved['metadata']['name']}?"
    )
    assert screenshot.stat().st_size > 10_000
    if record := os.environ.get("PERSAI_RECORD_PLUGIN_FIXTURES"):
        _record(Path(record), running, perses, seen)


def _record(
    directory: Path, running: PersAIStack, perses: PersesStandin, seen: dict[str, str]
) -> None:
    """Save PersAI's answers of this run for the plugin's unit tests (plugin/src/__fixtures__)."""
    directory.mkdir(parents=True, exist_ok=True)
    with running.client(cookies=perses.issue_tokens("alice").cookies) as client:
        answers = {
            "job.json": f"/api/v1/investigations/{seen['id']}",
            "events.txt": f"/api/v1/investigations/{seen['id']}/events",
            "cancelled.json": f"/api/v1/investigations/{seen['slowId']}",
            "investigations.json": "/api/v1/investigations",
            "conversations.json": "/api/v1/conversations",
            "dashboard.json": f"/api/v1/investigations/{seen['id']}/dashboard",
        }
        for name, path in answers.items():
            (directory / name).write_text(client.get(path).text)
