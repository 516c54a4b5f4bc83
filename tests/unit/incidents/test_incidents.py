"""Incident scenarios are deterministic, realistic OpenMetrics with a ground truth that holds."""

from __future__ import annotations

import itertools
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
from persai.incidents.analysis_scenarios import ANALYSIS_SCENARIOS, QUICK, generate_case
from persai.incidents.shapes import Shape, restarted

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


# The analysis scenarios (persai.incidents.analysis_scenarios) -----------------------------

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
HEALTHY = {"healthy_rates", "healthy_latency", "healthy_restarts", "healthy_gauges"}
HEALTHY |= {"seasonal_healthy"}
SMALL = [name for name in ANALYSIS_SCENARIOS if name != "haystack"]


@pytest.mark.parametrize("name", SMALL)
def test_an_analysis_scenario_is_the_same_from_the_same_seed(name: str) -> None:
    first, again = generate_case(name, 3, NOW), generate_case(name, 3, NOW)
    assert first.incident.openmetrics() == again.incident.openmetrics()
    assert first.probes == again.probes
    other = generate_case(name, 4, NOW)
    assert other.incident.openmetrics() != first.incident.openmetrics()


def test_the_analysis_scenarios_stay_out_of_generate_all() -> None:
    assert not set(ANALYSIS_SCENARIOS) & set(SCENARIOS)
    assert {i.scenario for i in generate_all(PARAMS)} == set(SCENARIOS)
    assert set(QUICK) <= set(ANALYSIS_SCENARIOS)


@pytest.mark.parametrize("name", SMALL)
def test_every_probe_names_series_of_the_data_within_its_range(name: str) -> None:
    case = generate_case(name, 5, NOW)
    text = case.incident.openmetrics()
    params = case.incident.params
    assert case.probes
    assert all(f'scenario="{name}"' in p.arguments["query"] for p in case.probes)
    for probe in case.probes:
        for culprit in probe.culprits:
            assert all(f'{k}="{v}"' in text for k, v in culprit.labels.items())
            assert params.start <= culprit.start < culprit.end <= case.now + timedelta(minutes=5)
    guilty = [c for p in case.probes for c in p.culprits]
    assert bool(guilty) == (name not in HEALTHY)
    assert (case.incident.truth.culprit is None) == (name in HEALTHY)


@pytest.mark.parametrize("name", SMALL)
def test_the_data_ends_a_little_before_the_question(name: str) -> None:
    case = generate_case(name, 6, NOW)
    lag = case.now - case.incident.params.end
    if name == "stale_data":
        assert timedelta(minutes=25) <= lag <= timedelta(minutes=30)
    else:
        assert timedelta(seconds=20) <= lag <= timedelta(seconds=150)
    for family in case.incident.families:
        for _, _, samples in family.series:
            assert max(t for t, _ in samples) < case.incident.params.end.timestamp()


def test_only_restarts_reset_the_analysis_counters() -> None:
    for name in SMALL:
        case = generate_case(name, 2, NOW)
        for family in case.incident.families:
            if family.type != "counter":
                continue
            for _, _, samples in family.series:
                values = [v for _, v in samples]
                drops = sum(1 for a, b in itertools.pairwise(values) if b < a)
                assert not drops or name in {"restart_wave", "healthy_restarts"}, name


def test_the_haystack_hides_one_culprit_among_ten_thousand_series() -> None:
    case = generate_case("haystack", 1, NOW)
    assert case.incident.series_count == 10_000
    # an hour a minute apart (and ten minutes before): small enough to backfill in seconds
    assert len(case.incident.params.timestamps()) == 70
    culprits = [c for p in case.probes for c in p.culprits]
    assert len(culprits) == 2  # the range query and the instant one
    assert culprits[0] == culprits[1]
    assert set(culprits[0].labels) == {"topic", "partition"}


def test_shapes_spike_step_and_ramp_as_documented() -> None:
    spike, step, ramp = (Shape(kind, 100, 200, 3.0) for kind in ("spike", "step", "ramp"))
    assert [spike.at(t) for t in (99, 100, 199, 200)] == [1.0, 3.0, 3.0, 1.0]
    assert [step.at(t) for t in (99, 100, 500)] == [1.0, 3.0, 3.0]
    assert [ramp.at(t) for t in (100, 150, 200, 900)] == [1.0, 2.0, 3.0, 3.0]


def test_a_restarted_counter_starts_again_from_what_it_counted_since() -> None:
    assert restarted([10, 20, 30, 40, 50], [0, 30, 60, 90, 120], [60]) == [10, 20, 10, 20, 30]


def test_histograms_are_cumulative_and_count_every_request() -> None:
    case = generate_case("latency_step", 1, NOW)
    (family,) = case.incident.families
    buckets: dict[str, list[float]] = {}
    counts: dict[str, list[float]] = {}
    for name, labels, samples in family.series:
        if name.endswith("_bucket") and labels["service"] == "api":
            buckets[labels["le"]] = [v for _, v in samples]
        if name.endswith("_count") and labels["service"] == "api":
            counts["api"] = [v for _, v in samples]
    bounds = sorted(buckets, key=lambda le: float(le))
    for lower, upper in itertools.pairwise(bounds):
        assert all(a <= b for a, b in zip(buckets[lower], buckets[upper], strict=True))
    assert buckets["+Inf"] == counts["api"]


def test_an_unknown_analysis_scenario_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        generate_case("no_such_case")
