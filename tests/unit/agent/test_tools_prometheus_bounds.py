"""Times and numbers the model writes into the Prometheus tools, however large, NaN or far back,
come back to it as a tool error that says what is accepted, and nothing reaches Prometheus.

Each of these used to raise OverflowError (or ValueError from datetime) out of the tool, past the
tool error handling, so that the investigation failed with "internal error".
"""

from __future__ import annotations

from typing import Any

import pytest

from persai.jobs import TimeRange
from tests.support.tools import NOW, Fake, call, error

EMPTY_MATRIX = {"resultType": "matrix", "result": []}
EMPTY_VECTOR = {"resultType": "vector", "result": []}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": "1e20"}, "time '1e20' is out of range (1970 to 2200)"),
        ({"start": "now-99999999d"}, "duration '99999999d' is out of range (0 to 3650 days)"),
        ({"end": "1e20"}, "time '1e20' is out of range"),
        ({"end": "nan"}, "time 'nan' is out of range"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "out of range (1970 to 2200)"),
        ({"duration": "99999999999999w"}, "duration '99999999999999w' is out of range"),
        ({"duration": "1e20"}, "duration '1e20' is out of range"),
        ({"step": "1e20"}, "duration '1e20' is out of range"),
        ({"step": "inf"}, "duration 'inf' is out of range"),
        ({"step": "nan"}, "duration 'nan' is out of range"),
        ({"step": "-15"}, "duration '-15' is out of range"),
    ],
)
def test_range_query_arguments_out_of_range_are_tool_errors(
    arguments: dict[str, Any], message: str
) -> None:
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)

    assert message in error(fake, "execute_range_query", {"query": "up", **arguments})
    assert fake.requests == []


@pytest.mark.parametrize("time", ["1e20", "-1e20", "now-99999999d", "9999-12-31T23:59:59-14:00"])
def test_instant_query_times_out_of_range_are_tool_errors(time: str) -> None:
    fake = Fake().prometheus("/api/v1/query", EMPTY_VECTOR)

    assert "out of range" in error(fake, "execute_instant_query", {"query": "up", "time": time})
    assert fake.requests == []


def test_the_longest_dashboard_range_the_api_accepts_is_one_the_tools_query() -> None:
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)
    fake.prometheus("/api/v1/query", EMPTY_VECTOR)
    longest = TimeRange(duration="3650d")

    out = call(fake, "execute_range_query", {"query": "up"}, time_range=longest)

    assert out.data is not None
    assert out.data["end"] == "2026-11-24T14:00:00Z"
    assert out.data["start"] == "2016-11-26T14:00:00Z"
    instant = call(fake, "execute_instant_query", {"query": "up"}, time_range=longest)
    assert instant.data is not None
    assert instant.data["time"] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
