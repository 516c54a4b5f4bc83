"""The scoring is a pure function: a good answer passes, and each way of missing is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from persai.eval import Expected, score
from persai.jobs import Step, StepStatus, Usage

START = datetime(2026, 11, 24, 14, 5, tzinfo=UTC)
END = START + timedelta(minutes=10)
RANGE = (datetime(2026, 11, 24, 12, 0, tzinfo=UTC), datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
LATENCY = Expected(
    culprit=("checkout",),
    others=("cart", "checkout-worker", "search", "auth", "users", "orders"),
    window_start=START,
    window_end=END,
    tolerance=timedelta(minutes=5),
    lag=timedelta(minutes=5),
    metrics=("http_request_duration_seconds",),
    asked_range=RANGE,
)
QUIET = Expected(metrics=("http_requests_total",), inconclusive=True, asked_range=RANGE)
QUERY = (
    "histogram_quantile(0.99, sum by (service, le) "
    "(rate(http_request_duration_seconds_bucket[5m])))"
)
GOOD = f"""## checkout got slow

The p99 latency of **checkout** rose from 80 ms to 640 ms at 14:06 UTC and recovered by 14:16.

```promql
{QUERY}
```
Other services (cart, search) stayed flat.
"""
USAGE = Usage(model_calls=3, input_tokens=2400, output_tokens=180, tool_calls=2)
STEPS = [
    Step(call_id="1", tool="execute_range_query", arguments={"query": QUERY}, status=StepStatus.OK),
    Step(call_id="2", tool="list_metrics", arguments={}, status=StepStatus.ERROR),
]


def test_a_good_answer_passes_with_its_cost() -> None:
    result = score(GOOD, STEPS, USAGE, LATENCY, wall_s=12.3456)
    assert result.passed, result.reasons
    assert result.checks.model_dump() == {
        "culprit": True, "window": True, "promql": True, "uncertainty": None,
    }  # fmt: skip
    assert result.reasons == []
    assert (result.tool_calls, result.tool_errors, result.model_calls) == (2, 1, 3)
    assert (result.input_tokens, result.output_tokens, result.tokens) == (2400, 180, 2580)
    assert result.wall_s == 12.346
    assert result.times == [START + timedelta(minutes=1), START + timedelta(minutes=11)]


def test_a_wrong_culprit_is_named_as_the_reason() -> None:
    result = score(GOOD.replace("checkout", "cart"), STEPS, USAGE, LATENCY)
    assert not result.passed
    assert result.checks.culprit is False
    assert result.reasons == ["culprit checkout not named"]


def test_a_longer_name_that_contains_the_culprit_does_not_name_it() -> None:
    answer = GOOD.replace("checkout", "checkout-worker")
    assert score(answer, STEPS, USAGE, LATENCY).checks.culprit is False
    # …but the culprit at the end of a sentence or in a label matcher does
    for text in ("It is checkout.", 'see `x{service="checkout"}`', "(checkout)", "CHECKOUT"):
        assert score(text, [], USAGE, LATENCY).checks.culprit is True, text


def test_listing_every_candidate_is_not_finding_the_culprit() -> None:
    answer = GOOD + "\nMaybe cart, checkout-worker, search, auth or users too."
    result = score(answer, STEPS, USAGE, LATENCY)
    assert result.checks.culprit is False
    assert result.reasons[0].startswith("names 5 other candidates too (cart, checkout-worker")


@pytest.mark.parametrize(
    "when",
    [
        "2026-11-24T14:00:00Z",  # five minutes early: within tolerance
        "2026-11-24 14:10 UTC",
        "2026-11-24T16:20:00+02:00",  # 14:20 UTC
        "14:24",  # after the window, within the rate lag and tolerance
        "14:07:30",
    ],
)
def test_a_time_within_tolerance_of_the_window_counts(when: str) -> None:
    answer = f"checkout got slow at {when}. `{QUERY}`"
    assert score(answer, [], USAGE, LATENCY).checks.window is True


@pytest.mark.parametrize("when", ["13:55", "14:30", "2026-11-23T14:10:00Z"])
def test_a_time_far_from_the_window_misses(when: str) -> None:
    result = score(f"checkout got slow at {when}. `{QUERY}`", [], USAGE, LATENCY)
    assert result.checks.window is False
    assert result.reasons[0].startswith("no time within 5 min of the anomaly (14:05 to 14:15 UTC)")


def test_the_asked_range_repeated_back_is_not_a_finding() -> None:
    # The window here ends where the asked range does: only a time of its own counts.
    late = Expected(culprit=("checkout",), window_start=END, window_end=RANGE[1], asked_range=RANGE)
    repeated = score("checkout, between 12:00 and 16:00 UTC", [], USAGE, late)
    assert repeated.checks.window is False
    assert repeated.reasons == ["states no time (anomaly 14:15 to 16:00 UTC)"]
    assert score("checkout, from 15:50 UTC", [], USAGE, late).checks.window is True


def test_an_answer_without_a_time_misses_the_window_and_says_so() -> None:
    result = score(f"checkout is slow: `{QUERY}` on 10.0.0.12:9100", [], USAGE, LATENCY)
    assert result.checks.window is False
    assert result.reasons == ["states no time (anomaly 14:05 to 14:15 UTC)"]


def test_promql_must_be_backticked_and_use_an_expected_family() -> None:
    untouched = "checkout got slow at 14:06."
    assert score(untouched, [], USAGE, LATENCY).reasons == [
        "cites no PromQL in backticks (expected one using http_request_duration_seconds)"
    ]
    unquoted = f"checkout got slow at 14:06, see {QUERY}."
    assert score(unquoted, [], USAGE, LATENCY).checks.promql is False
    other = "checkout got slow at 14:06: `rate(http_requests_total[5m])`"
    assert score(other, [], USAGE, LATENCY).reasons == [
        "no backticked PromQL uses http_request_duration_seconds"
    ]
    in_a_label = 'checkout, 14:06: `up{job="http_request_duration_seconds"}`'
    assert score(in_a_label, [], USAGE, LATENCY).checks.promql is False
    for cited in ("`http_request_duration_seconds_count`", "`http_request_duration_seconds`"):
        assert score(f"checkout 14:06 {cited}", [], USAGE, LATENCY).checks.promql is True


def test_a_failed_investigation_fails_whatever_it_said() -> None:
    result = score(GOOD, STEPS, USAGE, LATENCY, status="failed", error="model unavailable")
    assert not result.passed
    assert result.reasons == ["investigation failed: model unavailable"]
    empty = score(None, [], Usage(), LATENCY, status="timed_out")
    assert not empty.passed
    assert empty.reasons[0] == "investigation timed_out"
    assert empty.checks.culprit is False


@pytest.mark.parametrize(
    "answer",
    [
        "Nothing is wrong: storefront traffic follows its usual daily cycle. "
        "`sum by (endpoint) (rate(http_requests_total[5m]))`",
        "I found no anomaly in `rate(http_requests_total[5m])`; every endpoint looks normal.",
        "The data is inconclusive: `http_requests_total` shows ordinary noise.",
        "Everything looks healthy (`sum(rate(http_requests_total[5m]))`).",
    ],
)
def test_saying_nothing_is_wrong_passes_when_nothing_is(answer: str) -> None:
    result = score(answer, [], USAGE, QUIET)
    assert result.passed, result.reasons
    assert result.checks.model_dump() == {
        "culprit": None, "window": None, "promql": True, "uncertainty": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            "The root cause is /api/cart: errors spiked at 14:10. `rate(http_requests_total[5m])`",
            "blames a cause although nothing is wrong",
        ),
        (
            "Nothing unusual overall, but the drop was caused by /api/login. `http_requests_total`",
            "blames a cause although nothing is wrong",
        ),
        (
            "/api/cart traffic is not normal at 14:10. `rate(http_requests_total[5m])`",
            "does not say that nothing is wrong or that the data is inconclusive",
        ),
    ],
)
def test_blaming_something_when_nothing_is_wrong_fails(answer: str, reason: str) -> None:
    result = score(answer, [], USAGE, QUIET)
    assert not result.passed
    assert result.checks.uncertainty is False
    assert result.reasons == [reason]


def test_a_culprit_named_in_a_real_incident_is_not_judged_for_uncertainty() -> None:
    hedged = GOOD + "\nThe root cause is unclear; it may be a slow dependency."
    assert score(hedged, STEPS, USAGE, LATENCY).checks.uncertainty is None
