"""Scenario files: the built-in set, files of one's own, and what they make of the generators."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

import persai.eval
from persai.eval import EvalScenario, Suite, SuiteError, load_suite, prepare, write_data
from persai.incidents import IncidentParams, generate

END = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


def test_public_exports_are_pinned() -> None:
    assert set(persai.eval.__all__) == {
        "Case", "CheckTotal", "Checks", "EvalClient", "EvalError", "EvalOptions", "EvalScenario",
        "Expectation", "Expected", "ModelRun", "Report", "ReportError", "ScenarioResult", "Score",
        "Suite", "SuiteError", "Totals", "expected_of", "load_report", "load_suite", "prepare",
        "render_comparison", "render_run", "run_case", "run_eval", "run_model", "save_report",
        "score", "totals_of", "write_data",
    }  # fmt: skip


def test_the_built_in_set_covers_what_the_issue_asks_for() -> None:
    suite = load_suite()
    generators = [s.generator for s in suite.scenarios]
    assert len(suite.scenarios) >= 8
    for needed in ("latency_spike", "error_burst", "saturation", "target_down", "noisy_neighbour"):
        assert needed in generators
    assert generators.count("memory_leak") == 2  # restarts, and a slow leak
    (quiet,) = [s for s in suite.scenarios if s.expect.inconclusive]
    assert quiet.generator == "red_herring"
    for scenario in suite.scenarios:
        assert scenario.description
        assert scenario.question.endswith("?")
        assert "[scenario:" not in scenario.question


def test_every_built_in_case_resolves_to_its_generated_truth() -> None:
    cases = prepare(load_suite(), end=END)
    clusters = {case.scenario.cluster for case in cases}
    assert len(clusters) == len(cases)
    for case in cases:
        truth, expected = case.incident.truth, case.expected
        assert case.datasource == "/proxy/globaldatasources/eval"
        assert (case.start, case.end) == (case.incident.params.start, END)
        assert f'cluster="{case.scenario.cluster}"' in case.question
        assert case.incident.params.labels == {"cluster": case.scenario.cluster}
        assert f'cluster="{case.scenario.cluster}"' in truth.query
        assert expected.metrics
        if case.scenario.expect.inconclusive:
            assert expected.culprit == ()
            assert expected.window_start is None
            continue
        assert truth.culprit is not None
        assert case.scenario.expect.culprit_label in truth.culprit
        assert expected.culprit[0] == truth.culprit_value
        assert truth.culprit_value not in expected.others
        assert expected.others
        assert (expected.window_start, expected.window_end) == (
            truth.window_start,
            truth.window_end,
        )
        assert expected.asked_range == (case.start, case.end)


def test_the_same_seed_gives_the_same_cases_and_scenarios_of_one_generator_differ() -> None:
    first, again = prepare(load_suite(), end=END), prepare(load_suite(), end=END)
    assert [c.expected for c in first] == [c.expected for c in again]
    other_seed = prepare(load_suite(), end=END, seed=2)
    assert [c.expected.culprit for c in first] != [c.expected.culprit for c in other_seed]
    leaks = [c for c in first if c.scenario.generator == "memory_leak"]
    assert leaks[0].expected.culprit != leaks[1].expected.culprit
    assert leaks[0].expected.window_start != leaks[1].expected.window_start


def test_the_written_data_holds_every_scenario_apart(tmp_path: Path) -> None:
    cases = prepare(load_suite().select(["latency", "quiet-day"]), end=END)
    series = write_data(cases, tmp_path / "out" / "eval.om")
    text = (tmp_path / "out" / "eval.om").read_text()
    assert text.endswith("# EOF\n")
    assert series == sum(case.incident.series_count for case in cases)
    clusters = set(re.findall(r'cluster="([^"]+)"', text))
    assert clusters == {case.scenario.cluster for case in cases}
    # the question's scope never names the scenario, nor whether anything is wrong
    for case in cases:
        assert case.scenario.name not in case.question.split("\n\n")[1]


def test_a_file_of_ones_own_in_json_with_its_own_culprit_and_scope(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    mine = {
        "datasource": "/proxy/projects/eval/datasources/prom",
        "seed": 3,
        "scope": "",
        "scenarios": [
            {
                "name": "tiny",
                "generator": "latency_spike",
                "options": {"services": 3},
                "seed": 11,
                "question": "[scenario:x] Which service is slow?",
                "expect": {"culprit": ["svc-a", "svc-b"], "tolerance_min": 2, "max_others": 0},
            }
        ],
    }
    path.write_text(json.dumps(mine))
    (case,) = prepare(load_suite(path), end=END, datasource=None)
    assert case.question == "[scenario:x] Which service is slow?"
    assert case.datasource == "/proxy/projects/eval/datasources/prom"
    assert case.expected.culprit == ("svc-a", "svc-b")
    assert case.expected.tolerance.total_seconds() == 120
    assert case.expected.max_others == 0
    params = IncidentParams(end=END, seed=11, labels={"cluster": case.scenario.cluster})
    direct = generate("latency_spike", params, services=3)
    assert case.incident.openmetrics() == direct.openmetrics()
    (moved,) = prepare(load_suite(path), end=END, datasource="/proxy/globaldatasources/x")
    assert moved.datasource == "/proxy/globaldatasources/x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenarios: [", "is not YAML or JSON"),
        ("scenarios: []", "at least 1 item"),
        ("scenarios: [{name: a, generator: nope, question: q}]", "unknown generator 'nope'"),
        (
            "scenarios: [{name: a, generator: saturation, options: {cpus: 2}, question: q}]",
            "saturation has no option(s) ['cpus']",
        ),
        (
            "scenarios: [{name: a, generator: saturation, question: q},"
            " {name: a, generator: saturation, question: q}]",
            "scenario names must be unique: a",
        ),
        ("scenarios: [{name: A b, generator: saturation, question: q}]", "should match pattern"),
        ("scenarios: [{name: a, generator: saturation, question: q, colour: red}]", "colour"),
    ],
)
def test_a_bad_file_is_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(path)


def test_expectations_that_contradict_the_generator_are_refused() -> None:
    def suite(**expect: object) -> Suite:
        scenario = EvalScenario.model_validate(
            {"name": "a", "generator": "saturation", "question": "q?", "expect": expect}
        )
        return Suite(scenarios=[scenario])

    with pytest.raises(SuiteError, match="saturation has a culprit; not inconclusive"):
        prepare(suite(inconclusive=True), end=END)
    with pytest.raises(SuiteError, match="by 'instance', not 'pod'"):
        prepare(suite(culprit_label="pod"), end=END)
    quiet = Suite(scenarios=[EvalScenario(name="q", generator="red_herring", question="q?")])
    with pytest.raises(SuiteError, match="red_herring has no culprit: inconclusive"):
        prepare(quiet, end=END)


def test_missing_files_and_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="cannot read"):
        load_suite(tmp_path / "none.yaml")
    with pytest.raises(SuiteError, match="no scenario named nope"):
        load_suite().select(["latency", "nope"])
    assert [s.name for s in load_suite().select(["errors", "latency"]).scenarios] == [
        "latency", "errors",
    ]  # fmt: skip
    assert load_suite().select([]) == load_suite()
