"""What stands out in a summarised range result is what differs, not what every series shares.

The fixtures are what Prometheus answers for the queries a model sends: rates read through
`rate(…[5m])` whose last windows are partial, a scrape gap, a wave of restarts, a deploy, a
quantile read from histogram buckets, and the 1,000-series gauge of `bench/tool_output.py`.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from persai.agent.results import estimate_tokens, format_time, render_range
from persai.incidents import IncidentParams, generate

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
STEP_S = 30.0
POINTS = 241
END = START + timedelta(seconds=STEP_S * (POINTS - 1))
ERRORS = 'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'


def at(index: int) -> str:
    return format_time(START.timestamp() + index * STEP_S)


def matrix(series: dict[str, list[float | None]], label: str = "service") -> dict[str, Any]:
    """A matrix answer: one series per name, `None` for a missing point."""
    result = []
    for name, values in series.items():
        points = [
            [START.timestamp() + i * STEP_S, repr(v)] for i, v in enumerate(values) if v is not None
        ]
        result.append({"metric": {label: name}, "values": points})
    return {"resultType": "matrix", "result": result}


def render(data: dict[str, Any], query: str = ERRORS, budget: int = 2000) -> str:
    out = render_range(data, query=query, start=START, end=END, step_s=STEP_S, budget_tokens=budget)
    assert estimate_tokens(out) <= budget
    return out


def standouts(out: str) -> list[str]:
    """The lines under "Stand out (…)", in order."""
    lines = out.splitlines()
    if not any(line.startswith("Stand out") for line in lines):
        return []
    start = next(i for i, line in enumerate(lines) if line.startswith("Stand out"))
    taken = []
    for line in lines[start + 1 :]:
        if not line.startswith("- "):
            break
        taken.append(line)
    return taken


def rates(seed: int, level: float, noise: float = 0.02) -> list[float | None]:
    """A rate with a slow wander and noise of `noise` (a share of `level`), seeded."""
    rng = random.Random(seed)
    return [
        level * (1 + 0.05 * math.sin(i / 40 + seed) + rng.gauss(0, noise)) for i in range(POINTS)
    ]


def partial_end(values: list[float | None], factors: tuple[float, ...]) -> list[float | None]:
    """The last points as `rate(…[5m])` gives them when the data ended a little earlier."""
    out = list(values)
    for k, factor in enumerate(reversed(factors)):
        value = out[-1 - k]
        out[-1 - k] = None if value is None else value * factor
    return out


def forty_services(burst: bool = True) -> dict[str, list[float | None]]:
    """The issue's case: forty services' 5xx rates, one of them bursting 95 to 80 minutes
    before the end, and every series 13 % low at the last step (its window is partial)."""
    series = {}
    for i in range(40):
        values = rates(i, 0.5 + i * 0.3)
        if burst and i == 17:
            for k in range(POINTS - 190, POINTS - 160):  # 95 to 80 minutes before the end
                values[k] = (values[k] or 0) * 40
        series[f"svc-{i:02d}"] = partial_end(values, (0.87,))
    return series


def test_the_rate_case_flags_only_the_culprit_and_says_the_last_step_once() -> None:
    out = render(matrix(forty_services()))
    assert "Stand out (1 of 40 series" in out
    flagged = standouts(out)
    assert len(flagged) == 1
    assert 'service="svc-17"' in flagged[0]
    assert f"spike from {at(POINTS - 190)}" in flagged[0]
    shared = [line for line in out.splitlines() if "the end of the data" in line]
    assert len(shared) == 1, out
    assert re.search(
        rf"all 40 series are 1\d% lower at the last step \({at(POINTS - 1)}\)", shared[0]
    )
    assert "partial" in shared[0]
    assert "sudden drop" not in out


def test_healthy_rates_with_a_partial_end_have_nothing_standing_out() -> None:
    out = render(matrix(forty_services(burst=False)))
    assert "Nothing stands out" in out
    assert re.search(r"all 40 series are 1\d% lower at the last step", out)


def test_a_progressive_end_over_three_steps_is_one_shared_line() -> None:
    series = {name: partial_end(v, (0.95, 0.88, 0.75)) for name, v in forty_services().items()}
    out = render(matrix(series))
    assert len(standouts(out)) == 1
    lines = [line for line in out.splitlines() if "the end of the data" in line]
    assert len(lines) == 1
    assert "over the last" in lines[0]


def test_a_series_that_dies_at_the_end_while_the_others_do_not_still_stands_out() -> None:
    series = {name: rates(i, 5 + i) for i, name in enumerate(f"svc-{i:02d}" for i in range(40))}
    series["svc-05"] = partial_end(series["svc-05"], (0.5, 0.2, 0.05))
    out = render(matrix(series))
    flagged = standouts(out)
    assert len(flagged) == 1
    assert 'service="svc-05"' in flagged[0]
    assert "Shared by most series" not in out


def test_the_gauge_fixture_of_the_tool_output_benchmark_still_flags_one_of_a_thousand() -> None:
    incident = generate("high_cardinality", IncidentParams(end=END, seed=0))
    first = incident.params.start.timestamp() + incident.params.step_s
    result = [
        {
            "metric": {**labels, "__name__": name},
            "values": [[t, repr(v)] for t, v in samples if t >= first - incident.params.step_s],
        }
        for family in incident.families
        for name, labels, samples in family.series
    ]
    start = incident.params.start + timedelta(seconds=incident.params.step_s)
    out = render_range(
        {"resultType": "matrix", "result": result},
        query=incident.truth.query,
        start=start,
        end=incident.params.end,
        step_s=float(incident.params.step_s),
    )
    assert "Stand out (1 of 1000 series" in out
    assert f'queue="{incident.truth.culprit_value}"' in standouts(out)[0]


def test_a_gap_in_every_series_is_said_once_and_flags_none() -> None:
    series: dict[str, list[float | None]] = {}
    for i in range(25):
        values = rates(i, 100 + i)
        values[80:94] = [None] * 14
        series[f"10.0.0.{i}:9100"] = values
    out = render(matrix(series, label="instance"), query="node_load1")
    assert "Nothing stands out" in out
    assert out.count("have no data from") == 1
    assert f"all 25 series have no data from {at(80)} to {at(93)} (14 points)" in out


def test_a_target_that_goes_away_during_a_gap_of_all_is_still_named() -> None:
    series: dict[str, list[float | None]] = {}
    for i in range(25):
        values = rates(i, 100 + i)
        values[80:94] = [None] * 14
        series[f"10.0.0.{i}:9100"] = values
    series["10.0.0.3:9100"][94:150] = [None] * 56
    flagged = standouts(render(matrix(series, label="instance"), query="node_load1"))
    assert len(flagged) == 1
    assert 'instance="10.0.0.3:9100"' in flagged[0]
    assert f"no data from {at(80)} to {at(149)}" in flagged[0]


def test_data_that_ends_before_the_range_is_said_once() -> None:
    series: dict[str, list[float | None]] = {}
    for i in range(30):
        values = rates(i, 20 + i, noise=0.05)
        values[190:] = [None] * (POINTS - 190)
        series[f"q-{i:02d}"] = values
    series["q-07"][100:120] = [v * 8 if v else v for v in series["q-07"][100:120]]
    out = render(matrix(series, label="queue"), query="queue_depth")
    flagged = standouts(out)
    assert len(flagged) == 1
    assert 'queue="q-07"' in flagged[0]
    assert "no data after" not in flagged[0]
    assert f"all 30 series have no data after {at(189)}" in out


def counters(resets: dict[str, list[int]], count: int = 30) -> dict[str, list[float | None]]:
    """Raw counters of `count` pods, each restarting (from 0) at the indices given for it."""
    series: dict[str, list[float | None]] = {}
    for i in range(count):
        name = f"worker-{i:02d}"
        total, values, rng = 0.0, [], random.Random(i)
        for k in range(POINTS):
            total = 0.0 if k in resets.get(name, []) else total + rng.uniform(200, 220)
            values.append(total)
        series[name] = values
    return series


def test_a_wave_of_counter_resets_is_said_once() -> None:
    wave = {f"worker-{i:02d}": [60 + i % 2] for i in range(30)}  # a rolling restart, two steps
    wave["worker-11"] = [60, 150, 170, 190]
    result = matrix(counters(wave), label="pod")
    for item in result["result"]:
        item["metric"]["__name__"] = "jobs_processed_total"
    out = render(result, query="jobs_processed_total")
    assert out.count("reset their counters") == 1
    flagged = standouts(out)
    assert len(flagged) == 1
    assert 'pod="worker-11"' in flagged[0]
    assert f"counter reset at {at(150)}" in flagged[0]
    assert "(3 resets in all)" in flagged[0]


def test_a_deploy_that_slows_everything_names_the_service_it_broke() -> None:
    series: dict[str, list[float | None]] = {}
    for i in range(30):
        values = rates(i, 0.1 + i * 0.005, noise=0.01)
        factor = 5.0 if i == 9 else 1.3
        series[f"svc-{i:02d}"] = [v * factor if k >= 150 else v for k, v in enumerate(values)]
    out = render(matrix(series), query="histogram_quantile(0.99, sum by (le, service) (x))")
    flagged = standouts(out)
    assert len(flagged) == 1
    assert 'service="svc-09"' in flagged[0]
    assert at(150) in flagged[0]
    assert "29 of 30 series" in out


def test_few_series_report_a_drop_at_the_end_without_standing_out() -> None:
    values = partial_end(rates(1, 40), (0.8, 0.6, 0.45))
    out = render(matrix({"checkout": values}), query="sum(rate(http_requests_total[5m]))")
    assert "Nothing stands out" in out
    assert "partial" in out
    raw = render(matrix({"checkout": values}), query="sum(queue_depth)")
    assert "Stand out (1 of 1 series" in raw


def test_a_slow_ramp_that_moves_the_median_is_named_against_the_others() -> None:
    series = {f"web-{i:03d}": rates(i, 300 + i, noise=0.01) for i in range(60)}
    series["web-042"] = [
        (v or 0) * (1 + 1.5 * min(1.0, max(0, k - 90) / 120))
        for k, v in enumerate(series["web-042"])
    ]
    flagged = standouts(render(matrix(series, label="pod"), query="container_memory_bytes"))
    assert len(flagged) == 1
    assert 'pod="web-042"' in flagged[0]
    assert "unlike the other series" in flagged[0]
    named = re.search(r"since (\S+Z)", flagged[0])
    assert named
    began = datetime.fromisoformat(named.group(1)) - datetime.fromisoformat(at(91))
    assert abs(began) <= timedelta(minutes=3)  # of a ramp of an hour


def test_a_step_read_through_a_rate_window_is_named_from_where_it_began() -> None:
    series = {f"svc-{i:02d}": rates(i, 10 + i, noise=0.01) for i in range(20)}
    # rate(…[5m]) makes a step at 150 a ten-point ramp starting there
    series["svc-04"] = [
        (v or 0) * (1 + 2 * min(1.0, max(0, k - 149) / 10)) for k, v in enumerate(series["svc-04"])
    ]
    flagged = standouts(render(matrix(series)))
    assert f"high since {at(150)} until the end" in flagged[0]


def test_a_drop_and_its_recovery_are_one_dip() -> None:
    series = {f"svc-{i:02d}": rates(i, 50 + i, noise=0.01) for i in range(20)}
    # a deep daily cycle hides a dip from the stretch detector; its edges are sudden
    for name in series:
        series[name] = [(v or 0) * (1 + 0.6 * math.sin(k / 38)) for k, v in enumerate(series[name])]
    series["svc-08"] = [v * 0.3 if 120 <= k < 126 else v for k, v in enumerate(series["svc-08"])]
    flagged = standouts(render(matrix(series)))
    assert len(flagged) == 1
    assert f"dip from {at(120)} to {at(125)}" in flagged[0]


def poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def test_sparse_error_counts_do_not_stand_out_for_their_usual_bursts() -> None:
    """A few errors per five minutes: 3 usually, 9 now and then; the rates of equal counts
    differ in their last bits (Prometheus extrapolates each window a little differently)."""
    series: dict[str, list[float | None]] = {}
    for i in range(40):
        rng = random.Random(i)
        mean = rng.uniform(0.1, 0.6)  # errors per 30 s
        slots = [poisson(rng, mean) for _ in range(POINTS + 10)]
        jitter = [1.0 if k % 3 else 300 / 300.0000001 for k in range(POINTS)]
        values = [sum(slots[k : k + 10]) / 270 * jitter[k] for k in range(POINTS)]
        series[f"svc-{i:02d}"] = partial_end(values, (0.95, 0.85, 0.72))
    assert "Nothing stands out" in render(matrix(series))


def test_noise_alone_is_neither_shared_nor_standing_out() -> None:
    for seed in range(10):
        rng = random.Random(seed)
        series: dict[str, list[float | None]] = {
            f"q-{i:02d}": [(10 + 5 * i) * (1 + rng.gauss(0, 0.1)) for _ in range(POINTS)]
            for i in range(30)
        }
        for query in ("queue_depth", "sum by (queue) (rate(queue_messages_total[5m]))"):
            out = render(matrix(series, label="queue"), query=query)
            assert "Nothing stands out" in out
            assert "Shared by most series" not in out


def test_a_quantile_moving_within_its_bucket_is_no_news() -> None:
    series = {f"svc-{i:02d}": rates(i, 0.25, noise=0.002) for i in range(30)}
    series["svc-03"] = [v * 1.15 if 100 <= k < 110 else v for k, v in enumerate(series["svc-03"])]
    quantile = "histogram_quantile(0.99, sum by (le, service) (rate(x_bucket[5m])))"
    assert "Nothing stands out" in render(matrix(series), query=quantile)
    assert "Stand out (1 of 30 series" in render(matrix(series), query="latency_seconds")
