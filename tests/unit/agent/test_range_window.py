"""The window execute_range_query reports is exactly the one it sent to Prometheus.

The compatibility stream hands that window to the Perses plugin, which charts the call over it,
so it must not drift from the query by the sub-second part of the worker's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.agent import tools_harness
from tests.unit.agent.tools_harness import Fake, call

EMPTY_MATRIX = {"resultType": "matrix", "result": []}
CLOCK = datetime(2026, 11, 24, 14, 0, 7, 654_321, tzinfo=UTC)  # a worker's now, with microseconds


def _sent(fake: Fake) -> tuple[float, float, float]:
    (params,) = fake.params("/api/v1/query_range")
    named = dict(params)
    return float(named["start"]), float(named["end"]), float(named["step"])


@pytest.mark.parametrize(
    ("arguments", "length"),
    [
        ({"query": "up", "duration": "2h"}, timedelta(hours=2)),
        ({"query": "up", "start": "now-90m"}, timedelta(minutes=90)),
        ({"query": "up", "start": "now-1h", "end": "now-30m"}, timedelta(minutes=30)),
        ({"query": "up"}, timedelta(hours=1)),
    ],
)
def test_the_reported_window_is_the_queried_one(
    monkeypatch: pytest.MonkeyPatch, arguments: dict[str, Any], length: timedelta
) -> None:
    monkeypatch.setattr(tools_harness, "NOW", CLOCK)
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)

    out = call(fake, "execute_range_query", arguments)

    assert out.data is not None
    start, end = (datetime.fromisoformat(out.data[k]) for k in ("start", "end"))
    assert out.data["start"].endswith("Z")  # RFC 3339 UTC, as JavaScript's Date parses it
    assert end - start == length
    assert _sent(fake) == (start.timestamp(), end.timestamp(), out.data["step_s"])
    assert CLOCK - end < timedelta(minutes=31)
