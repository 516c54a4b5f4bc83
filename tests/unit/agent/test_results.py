"""Tool results fit their token budget, stay readable when small and keep what matters."""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from persai.agent.results import (
    choose_step,
    estimate_tokens,
    format_time,
    render_instant,
    render_list,
    render_range,
)

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
STEP_S = 30.0
POINTS = 240
END = START + timedelta(seconds=STEP_S * (POINTS - 1))


def at(index: int) -> str:
    """The RFC 3339 time of the grid point `index`."""
    return format_time(START.timestamp() + index * STEP_S)


def series(labels: dict[str, str], values: list[float | None]) -> dict[str, Any]:
    """One matrix entry as Prometheus answers it; `None` values are missing points."""
    base = START.timestamp()
    points = [[base + i * STEP_S, str(v)] for i, v in enumerate(values) if v is not None]
    return {"metric": labels, "values": points}


def matrix(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resultType": "matrix", "result": list(entries)}


def noisy(level: float, seed: int, count: int = POINTS) -> list[float | None]:
    """A deterministic wobble of about 2 % around `level`."""
    return [
        level * (1 + 0.02 * math.sin(i * 1.7 + seed) * math.cos(i * 0.37 + seed))
        for i in range(count)
    ]


def render(data: dict[str, Any], budget: int = 2000, query: str = "q") -> str:
    return render_range(
        data, query=query, start=START, end=END, step_s=STEP_S, budget_tokens=budget
    )


@functools.cache
def wide(count: int, culprit: int | None = None, spike_at: int = 150) -> dict[str, Any]:
    """`count` noisy series of `queue_depth`; the culprit spikes tenfold for 10 points."""
    entries = []
    for i in range(count):
        values = noisy(100 + i % 50, i)
        if i == culprit:
            for k in range(spike_at, spike_at + 10):
                values[k] = 1000.0 + k
        labels = {"__name__": "queue_depth", "app": "ingest", "queue": f"q-{i:04d}"}
        entries.append(series(labels, values))
    return matrix(*entries)


def test_estimate_tokens_counts_digits_words_and_marks() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello") == 2
    assert estimate_tokens("123456") == 2
    assert estimate_tokens('{a="b"}') == 7
    assert estimate_tokens("a b\nc") == estimate_tokens("a b") + estimate_tokens("c")


def test_small_result_is_written_out_point_by_point() -> None:
    data = matrix(
        series({"__name__": "up", "instance": "a"}, [1, 1, 0]),
        series({"__name__": "up", "instance": "b"}, [1, 1, 1]),
    )
    out = render(data)
    assert 'up{instance="a"}' not in out  # the common name is stated once
    assert "Labels common to all series: up" in out
    assert '{instance="a"}:' in out
    assert f"  {at(2)} 0" in out
    assert f"  {at(0)} 1" in out
    assert "Not shown" not in out
    assert "{" + '"resultType"' not in out  # not raw JSON


@pytest.mark.parametrize("budget", [60, 500, 4000])
def test_huge_result_fits_every_budget_and_says_what_it_left_out(budget: int) -> None:
    out = render(wide(1500, culprit=1234), budget=budget)
    assert estimate_tokens(out) <= budget
    assert "Not shown" in out or "[cut" in out


def test_the_culprit_and_its_time_are_named_among_a_thousand_series() -> None:
    out = render(wide(1000, culprit=421, spike_at=150))
    assert estimate_tokens(out) <= 2000
    line = next(
        line for line in out.splitlines() if line.startswith("- ") and 'queue="q-0421"' in line
    )
    assert "spike" in line
    assert at(159) in line  # the peak: 1000 + k is largest at the last point
    assert "Stand out (1 of 1000 series" in out
    assert "Hint:" in out
    assert "topk(5, q)" in out


def test_summaries_count_every_series_shown_or_not() -> None:
    out = render(wide(300, culprit=7))
    shown = sum(1 for line in out.splitlines() if line.startswith("- "))
    hidden = int(re.search(r"Not shown: (\d+) of 300 series", out).group(1))  # type: ignore[union-attr]
    assert shown + hidden == 300


def test_a_level_step_is_reported_with_when_it_began() -> None:
    values = noisy(50, 1)
    values[180:] = [v * 3 for v in values[180:] if v is not None]
    out = render(
        matrix(
            *[series({"job": f"j{i}"}, noisy(50, i)) for i in range(5)],
            series({"job": "stepped"}, values),
        )
    )
    line = next(
        line for line in out.splitlines() if line.startswith("- ") and 'job="stepped"' in line
    )
    assert f"high since {at(180)} until the end" in line


def test_a_drop_to_zero_is_reported() -> None:
    values: list[float | None] = [1.0] * POINTS
    values[100:130] = [0.0] * 30
    others = [series({"instance": f"i{i}"}, [1.0] * POINTS) for i in range(30)]
    out = render(matrix(*others, series({"instance": "down"}, values)))
    line = next(
        line for line in out.splitlines() if line.startswith("- ") and 'instance="down"' in line
    )
    assert f"dip from {at(100)} to {at(129)}" in line
    assert "30 series alike" in out


def test_counter_resets_are_reported() -> None:
    values: list[float | None] = [float(i * 10) for i in range(POINTS)]
    values[200:] = [float((i - 200) * 10) for i in range(200, POINTS)]
    others = [
        series({"__name__": "jobs_total", "pod": f"p{i}"}, [float(k * 10) for k in range(POINTS)])
        for i in range(40)
    ]
    out = render(matrix(*others, series({"__name__": "jobs_total", "pod": "restarted"}, values)))
    line = next(
        line for line in out.splitlines() if line.startswith("- ") and 'pod="restarted"' in line
    )
    assert f"counter reset at {at(200)}" in line


def test_gaps_are_reported_with_their_span() -> None:
    values = noisy(5, 3)
    values[60:80] = [None] * 20
    others = [series({"instance": f"i{i}"}, noisy(5, i)) for i in range(20)]
    out = render(matrix(*others, series({"instance": "flaky"}, values)))
    line = next(
        line for line in out.splitlines() if line.startswith("- ") and 'instance="flaky"' in line
    )
    assert f"no data from {at(60)} to {at(79)} (20 points missing)" in line


def test_nothing_standing_out_is_said_plainly() -> None:
    out = render(matrix(*[series({"job": f"j{i}"}, noisy(10 + i, i)) for i in range(40)]))
    assert "Nothing stands out" in out


def test_empty_results_say_so_and_how_to_look_further() -> None:
    out = render(matrix())
    assert "No data" in out
    assert "metric-names" in out
    assert "widen the time range" in out


def test_a_huge_query_string_still_fits() -> None:
    out = render(wide(50, culprit=3), budget=300, query="sum(" * 2000)
    assert estimate_tokens(out) <= 300


def test_instant_vector_small_is_listed_largest_first() -> None:
    data = {
        "resultType": "vector",
        "result": [
            {"metric": {"job": "a"}, "value": [START.timestamp(), "1"]},
            {"metric": {"job": "b"}, "value": [START.timestamp(), "7.5"]},
        ],
    }
    out = render_instant(data, query="x", time=START, budget_tokens=2000)
    assert out.index('{job="b"} 7.5') < out.index('{job="a"} 1')
    assert format_time(START.timestamp()) in out


def test_instant_vector_large_keeps_the_odd_one_out() -> None:
    result = [
        {"metric": {"__name__": "up", "instance": f"10.0.0.{i}:9100"}, "value": [0, "1"]}
        for i in range(2000)
    ]
    result[1500]["value"] = [0, "0"]
    out = render_instant(
        {"resultType": "vector", "result": result}, query="up", time=START, budget_tokens=500
    )
    assert estimate_tokens(out) <= 500
    assert '{instance="10.0.0.1500:9100"} 0' in out
    assert "Not shown" in out


def test_instant_scalar_and_empty() -> None:
    scalar = {"resultType": "scalar", "result": [START.timestamp(), "42"]}
    assert "Scalar at " + format_time(START.timestamp()) + ": 42" in render_instant(
        scalar, query="42", time=START
    )
    empty = render_instant({"resultType": "vector", "result": []}, query="nope", time=START)
    assert "No data" in empty


def test_lists_give_the_count_the_first_items_and_what_was_left_out() -> None:
    names = [f"metric_{i:05d}_total" for i in range(20_000)]
    out = render_list(names, kind="metric names", budget_tokens=400)
    assert estimate_tokens(out) <= 400
    assert out.startswith("20000 metric names:")
    assert "metric_00000_total" in out
    shown = sum(1 for line in out.splitlines() if line.startswith("metric_"))
    assert f"Not shown: {20_000 - shown} more metric names (of 20000)" in out


def test_series_lists_state_common_labels_once() -> None:
    sets = [{"__name__": "up", "job": "node", "instance": f"i{i}"} for i in range(3)]
    out = render_list(sets, kind="series")
    assert 'Labels common to all: up{job="node"}' in out
    assert '{instance="i2"}' in out
    assert "No series found" in render_list([], kind="series")


@pytest.mark.parametrize(
    ("hours", "expected"), [(0, 1.0), (1, 15.0), (2, 30.0), (24, 600.0), (24 * 30, 10800.0)]
)
def test_choose_step_gives_nice_steps_within_the_point_limit(hours: int, expected: float) -> None:
    step = choose_step(START, START + timedelta(hours=hours))
    assert step == expected
    assert hours * 3600 / step + 1 <= 250
