"""Incident scenarios are deterministic, realistic OpenMetrics with a ground truth that holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

import persai.incidents
from persai.incidents import (
    SCENARIOS,
    IncidentParams,
    default_end,
    generate,
    generate_all,
    scenario_names,
    to_openmetrics,
)

END = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
PARAMS = IncidentParams(end=END, seed=7)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+) (\d+)$")


def test_public_exports_are_pinned() -> None:
    assert set(persai.incidents.__all__) == {
        "SCENARIOS", "Family", "GroundTruth", "Incident", "IncidentParams", "Scenario",
        "default_end", "generate", "generate_all", "scenario_names", "to_openmetrics",
    }  # fmt: skip


def test_the_scenarios_the_issue_asks_for_are_listed_by_name() -> None:
    required = {"latency_spike", "error_burst", "memory_leak", "target_down", "high_cardinality"}
    assert required <= set(scenario_names())
    assert {"saturation", "noisy_neighbour", "red_herring"} <= set(SCENARIOS)
    for scenario in SCENARIOS.values():
        assert scenario.description


@pytest.mark.parametrize("name", scenario_names())
def test_same_seed_and_end_give_the_same_data_and_truth(name: str) -> None:
    first, again = generate(name, PARAMS), generate(name, PARAMS)
    assert first.openmetrics() == again.openmetrics()
    assert first.truth == again.truth
    other = generate(name, IncidentParams(end=END, seed=8))
    assert other.openmetrics() != first.openmetrics()


@pytest.mark.parametrize("name", scenario_names())
def test_openmetrics_is_well_formed_with_second_timestamps_in_range(name: str) -> None:
    incident = generate(name, PARAMS)
    text = incident.openmetrics()
    assert text.endswith("# EOF\n")
    lines = text.splitlines()[:-1]
    first = int((PARAMS.start - PARAMS.warmup).timestamp())
    typed = {line.split()[2] for line in lines if line.startswith("# TYPE ")}
    assert typed
    for line in lines:
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        assert first <= int(match.group(4)) < END.timestamp()
        assert any(match.group(1).startswith(family) for family in typed)


@pytest.mark.parametrize("name", scenario_names())
def test_counters_only_go_up_except_at_the_resets_the_truth_explains(name: str) -> None:
    incident = generate(name, PARAMS)
    for family in incident.families:
        if family.type == "gauge":
            continue
        for sample_name, labels, samples in family.series:
            values = [v for _, v in samples]
            drops = [i for i in range(1, len(values)) if values[i] < values[i - 1]]
            if drops:
                assert sample_name == "process_cpu_seconds_total"
                assert incident.truth.culprit is not None
                assert labels["pod"] == incident.truth.culprit["pod"]


@pytest.mark.parametrize("name", scenario_names())
def test_the_truth_is_inside_the_range_and_names_a_series_in_the_data(name: str) -> None:
    incident = generate(name, PARAMS)
    truth = incident.truth
    assert truth.question
    assert truth.query
    assert all(metric in incident.openmetrics() for metric in truth.metrics)
    if truth.culprit is None:
        assert name == "red_herring"
        return
    assert truth.window_start is not None
    assert truth.window_end is not None
    assert PARAMS.start <= truth.window_start < truth.window_end <= END
    assert timedelta(minutes=5) <= truth.window_end - truth.window_start <= timedelta(hours=1)
    ((label, value),) = truth.culprit.items()
    assert f'{label}="{value}"' in incident.openmetrics()


def test_high_cardinality_has_over_a_thousand_series_per_step() -> None:
    incident = generate("high_cardinality", PARAMS)
    assert incident.series_count >= 1000
    assert len(PARAMS.timestamps()) >= 240


def test_options_change_the_scenario_and_unknown_ones_are_refused() -> None:
    small = generate("high_cardinality", PARAMS, series=10)
    assert small.series_count == 10
    with pytest.raises(ValueError, match="no option"):
        generate("high_cardinality", PARAMS, colour=1)


def test_scenarios_share_one_document_apart_by_their_label() -> None:
    incidents = generate_all(PARAMS, ["error_burst", "red_herring"])
    text = to_openmetrics(incidents)
    assert text.count("# TYPE http_requests counter") == 1
    assert 'scenario="error_burst"' in incidents[0].truth.query
    assert 'scenario="red_herring"' in text


def test_the_default_end_is_a_whole_minute_in_the_past() -> None:
    now = datetime(2026, 11, 24, 14, 5, 42, tzinfo=UTC)
    assert default_end(now) == datetime(2026, 11, 24, 14, 4, tzinfo=UTC)
