"""Every incident, backfilled into a real Prometheus, is still recognisable in compact output."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from persai.agent.results import estimate_tokens, render_range
from persai.incidents import Incident, IncidentParams, generate_all, scenario_names, to_openmetrics
from tests.support.prometheus import PrometheusServer, require_binaries

pytestmark = pytest.mark.integration

BUDGET = 2000
RULES = """
groups:
  - name: checks
    rules:
      - record: job:up:count
        expr: count by (job) (up)
      - alert: AlwaysFiring
        expr: vector(1)
"""
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def incidents() -> list[Incident]:
    return generate_all(IncidentParams(seed=3))


@pytest.fixture(scope="module")
def prometheus(
    incidents: list[Incident], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    work_dir = tmp_path_factory.mktemp("prometheus")
    text = to_openmetrics(incidents)
    with PrometheusServer.start(
        work_dir, openmetrics=text, rule_files={"rules.yml": RULES}
    ) as server:
        yield server


def query_range(server: PrometheusServer, incident: Incident) -> dict[str, object]:
    params = incident.params
    response = httpx.get(
        f"{server.url}/api/v1/query_range",
        params={
            "query": incident.truth.query,
            "start": params.start.timestamp(),
            "end": params.end.timestamp(),
            "step": params.step_s,
        },
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success"
    data: dict[str, object] = body["data"]
    return data


@pytest.mark.parametrize("name", scenario_names())
def test_compact_output_names_the_culprit_and_when(
    name: str, incidents: list[Incident], prometheus: PrometheusServer
) -> None:
    incident = next(i for i in incidents if i.scenario == name)
    data = query_range(prometheus, incident)
    params, truth = incident.params, incident.truth
    out = render_range(
        data,
        query=truth.query,
        start=params.start,
        end=params.end,
        step_s=params.step_s,
        budget_tokens=BUDGET,
    )
    assert estimate_tokens(out) <= BUDGET
    if truth.culprit_value is None:
        assert "Nothing stands out" in out
        return
    assert truth.window_start is not None
    assert truth.window_end is not None
    standouts = [line for line in out.splitlines() if line.startswith("- ")]
    line = next(line for line in standouts if f'"{truth.culprit_value}"' in line)
    assert line == standouts[0], "the culprit is ranked first"
    slack = timedelta(seconds=2 * params.step_s)
    lag = timedelta(seconds=truth.rate_window_s)
    times = [datetime.fromisoformat(t) for t in _TIME.findall(line)]
    assert any(truth.window_start - slack <= t <= truth.window_end + slack + lag for t in times), (
        f"no time within {truth.window_start}..{truth.window_end} in: {line}"
    )


def test_rules_are_loaded_and_evaluated(prometheus: PrometheusServer) -> None:
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert names == {"job:up:count", "AlwaysFiring"}


def test_a_failed_start_shows_the_log(tmp_path: Path) -> None:
    broken = {"rules.yml": "groups: [{name: x, rules: [{record: r, expr: 'sum('}]}]"}
    with pytest.raises(RuntimeError, match="last lines of"):
        PrometheusServer.start(tmp_path, rule_files=broken)


def test_missing_binaries_skip_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install prometheus"):
        require_binaries()


def test_missing_binaries_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install prometheus"):
        require_binaries()
