"""Reading answers: stated times, cited PromQL, named label values, all-clear and blame."""

from __future__ import annotations

from datetime import UTC, datetime

from persai.eval.answers import (
    blames_something,
    cited_queries,
    mentioned_times,
    names_value,
    says_all_clear,
    uses_metric,
)

NEAR = datetime(2026, 11, 24, 23, 50, tzinfo=UTC)


def at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def test_times_are_read_in_the_order_written_in_utc() -> None:
    answer = (
        "It began 2026-11-24T23:41:30Z (23:41 UTC), peaked at 23:58:10, recovered at 00:07 "
        "and again on 2026-11-25 01:00+01:00."
    )
    assert mentioned_times(answer, NEAR) == [
        at(24, 23, 41, 30), at(24, 23, 41), at(24, 23, 58, 10), at(25, 0, 7), at(25, 0, 0),
    ]  # fmt: skip


def test_addresses_versions_and_ratios_are_not_times() -> None:
    text = "instance 10.0.0.12:9100, image v1:22, ratio 3:1, /api:80, port :9090, 24:00, 12:75"
    assert mentioned_times(text, NEAR) == []


def test_cited_queries_come_from_fences_and_inline_code() -> None:
    answer = "See `rate(x_total[5m])` and\n```promql\nsum by (pod) (y)\n```\nand ` ` plus `z`."
    assert cited_queries(answer) == ["sum by (pod) (y)", "rate(x_total[5m])", "z"]


def test_a_family_covers_its_samples_but_not_label_values_or_longer_names() -> None:
    assert uses_metric("rate(node_cpu_seconds_total[5m])", ["node_cpu_seconds_total"])
    assert uses_metric("rate(node_cpu_seconds_total[5m])", ["node_cpu_seconds"])
    assert uses_metric("sum(rate(h_bucket[5m])) by (le)", ["h"])
    assert not uses_metric("rate(h_bucket_extra[5m])", ["h"])
    assert not uses_metric('up{job="h_bucket"}', ["h"])
    assert uses_metric("up == 0", ["up", "node_load1"])


def test_label_values_are_named_as_whole_words() -> None:
    assert names_value("node-1 is hot.", "node-1")
    assert not names_value("node-10 is hot", "node-1")
    assert names_value("GET /api/cart failed", "/api/cart")
    assert not names_value("GET /api/cart/items failed", "/api/cart")
    assert names_value("10.0.0.12:9100 is down", "10.0.0.12:9100")
    assert names_value("host 10.0.0.12 is down", "10.0.0.12")
    assert not names_value("10.0.0.120 is down", "10.0.0.12")
    assert not names_value("anything", "")


def test_all_clear_and_blame() -> None:
    assert says_all_clear("Nothing looks wrong.")
    assert says_all_clear("There is no clear sign of an anomaly.")
    assert says_all_clear("Everything is within normal ranges.")
    assert not says_all_clear("The checkout endpoint is failing.")
    assert not says_all_clear("Traffic is not normal.")
    assert blames_something("The culprit is /api/cart.")
    assert blames_something("The errors were caused by a deploy.")
    assert not blames_something("The root cause is unclear.")
    assert not blames_something("No culprit stands out.")
