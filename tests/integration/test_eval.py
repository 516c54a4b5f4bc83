"""`persai eval` end to end: its data in a real Prometheus, questions through the real API, a
worker and Llama Stack to the scripted model, and a report that passes one answer and fails one.

The scripted model picks its script by a `[scenario:NAME]` marker in the question; the eval
scenarios' questions are data, so this test's own scenario file carries the markers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from persai.agent.timeparse import rfc3339
from persai.eval import Case, load_report, load_suite, prepare
from persai.incidents import default_end
from tests.support.persai import MODEL, PersAIStack
from tests.support.prometheus import PrometheusServer
from tests.support.scripted_model import ScriptedModel

DATASOURCE = "/proxy/globaldatasources/eval"
SUITE = {
    "description": "one right answer and one wrong one, for the scripted model",
    "datasource": DATASOURCE,
    "seed": 5,
    "scenarios": [
        {
            "name": "latency",
            "generator": "latency_spike",
            "options": {"services": 12, "minutes": 10},
            "question": "[scenario:eval-right] Which service's latency went up, and when?",
            "expect": {"culprit_label": "service", "metrics": ["http_request_duration_seconds"]},
        },
        {
            "name": "quiet",
            "generator": "red_herring",
            "question": "[scenario:eval-alarmist] Is anything wrong with storefront traffic?",
            "expect": {"inconclusive": True, "metrics": ["http_requests_total"]},
        },
    ],
}


def persai_cli(*argv: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    """`persai` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "persai.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="module")
def end() -> datetime:
    return default_end()


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "suite.yaml"
    path.write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def eval_prometheus(
    tmp_path_factory: pytest.TempPathFactory, suite_file: Path, end: datetime
) -> Iterator[PrometheusServer]:
    """A Prometheus over the data `persai eval --write-data` wrote, as the docs tell operators."""
    data = tmp_path_factory.mktemp("eval-data") / "eval.om"
    written = persai_cli(
        "eval", "--scenarios", str(suite_file), "--write-data", str(data), "--end", rfc3339(end)
    )
    assert written.returncode == 0, written.stderr
    assert f"--end {rfc3339(end)} --seed 5" in written.stdout
    server = PrometheusServer.start(
        tmp_path_factory.mktemp("eval-prometheus"), openmetrics=data.read_text(encoding="utf-8")
    )
    yield server
    server.stop()


def script_answers(model: ScriptedModel, latency: Case, quiet: Case) -> None:
    """A right answer about the latency (the culprit quoted from the tool's result), and an
    alarmist one about the quiet day."""
    window = latency.expected.window_start
    assert window is not None
    query = latency.incident.truth.query
    model.add_scenario(
        "eval-right",
        [
            {"tool_calls": [{"name": "execute_range_query", "arguments": {"query": query}}]},
            {
                "text": f"The p99 latency of **{{match}}** rose eightfold at {window:%H:%M} UTC."
                f"\n\n```promql\n{query}\n```",
                "match": r'service="([^"]+)"',
            },
        ],
    )
    quiet_query = quiet.incident.truth.query
    model.add_scenario(
        "eval-alarmist",
        [
            {"tool_calls": [{"name": "execute_range_query", "arguments": {"query": quiet_query}}]},
            {"text": f"The root cause is /api/cart: its traffic swings wildly. `{quiet_query}`"},
        ],
    )


def test_eval_passes_a_right_answer_and_fails_a_wrong_one_for_the_right_reasons(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    eval_prometheus: PrometheusServer,
    suite_file: Path,
    end: datetime,
    tmp_path: Path,
) -> None:
    latency, quiet = prepare(load_suite(suite_file), end=end)
    script_answers(scripted_model, latency, quiet)
    running = persai_stack(PERSAI_DATASOURCES=f"eval={eval_prometheus.url}")
    assert running.api is not None
    report_path = tmp_path / "report.json"
    argv = ["eval", "--url", running.api.url, "--scenarios", str(suite_file)]
    argv += ["--end", rfc3339(end), "--report", str(report_path), "--timeout", "60"]

    done = persai_cli(*argv)

    assert done.returncode == 1, done.stdout + done.stderr + running.logs()  # one failed
    report = load_report(report_path)
    (run,) = report.runs
    assert run.model == MODEL  # the server's default
    right, wrong = run.results
    assert right.status == "succeeded", right.error
    assert right.score.passed, (right.score.reasons, right.answer)
    assert right.score.checks.model_dump() == {
        "culprit": True, "window": True, "promql": True, "uncertainty": None,
    }  # fmt: skip
    culprit = latency.expected.culprit[0]
    assert right.answer is not None
    assert f"**{culprit}**" in right.answer  # only the tool's result held it
    assert (right.score.tool_calls, right.score.model_calls) == (1, 2)
    assert right.score.input_tokens > 0
    assert right.score.output_tokens > 0
    assert 0 < right.score.wall_s < 60

    assert wrong.status == "succeeded"
    assert not wrong.score.passed
    assert wrong.score.checks.uncertainty is False
    assert wrong.score.checks.promql is True
    assert wrong.score.reasons == ["blames a cause although nothing is wrong"]
    assert run.totals.passed == 1
    assert run.totals.tool_calls == 2

    # the questions went through the public API as the scenario file words them, with the data's
    # range, and the model saw each scenario's scope
    asked = scripted_model.requests("eval-right")[0]["messages"]
    content = next(m for m in asked if m["role"] == "user")["content"]
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    assert latency.question in text
    assert f'cluster="{latency.scenario.cluster}"' in text
    system = json.dumps([m for m in asked if m["role"] in ("system", "developer")])
    assert f"{rfc3339(latency.start)} to {rfc3339(end)}" in system

    table = done.stdout
    assert any(line.split()[:2] == ["latency", "pass"] for line in table.splitlines())
    assert "quiet: blames a cause although nothing is wrong" in table

    compared = persai_cli("eval", "compare", str(report_path), str(report_path))
    assert compared.returncode == 0, compared.stderr
    assert compared.stdout.count(f": {MODEL}") >= 2
