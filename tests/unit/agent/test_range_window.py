"""The window execute_range_query reports is exactly the one it sent to Prometheus.

The compatibility stream hands that window to the Perses plugin, which charts the call over it,
so it must not drift from the query by the sub-second part of the worker's clock. A call that
fails once its window is resolved reports it too (ToolError.data): the plugin charts failed calls
as well.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from persai.agent.timeparse import rfc3339
from persai.agent.tools import ToolError
from tests.support import tools as tools_harness
from tests.support.tools import DATASOURCE, Fake, call

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


def _failure(fake: Fake, arguments: dict[str, Any]) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call(fake, "execute_range_query", arguments)
    return caught.value


def test_a_failed_query_still_reports_the_window_it_was_sent_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tools_harness, "NOW", CLOCK)
    rejected = {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis',
    }
    fake = Fake().on(DATASOURCE + "/api/v1/query_range", rejected, status=400)

    failure = _failure(fake, {"query": "sum(", "duration": "1h"})

    assert "bad_data" in str(failure)
    assert failure.data is not None
    assert set(failure.data) == {"query", "start", "end", "step_s"}
    assert failure.data["query"] == "sum("
    start, end = (datetime.fromisoformat(failure.data[k]) for k in ("start", "end"))
    assert end - start == timedelta(hours=1)
    assert _sent(fake) == (start.timestamp(), end.timestamp(), failure.data["step_s"])


def test_a_step_that_does_not_parse_reports_the_window_without_a_step() -> None:
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)

    failure = _failure(fake, {"query": "up", "start": "now-2h", "step": "often"})

    assert failure.data == {
        "query": "up",
        "start": rfc3339(tools_harness.NOW - timedelta(hours=2)),
        "end": rfc3339(tools_harness.NOW),
    }
    assert fake.to("/api/v1/query_range") == []  # nothing was sent


@pytest.mark.parametrize(
    "arguments",
    [
        {"query": "up", "start": "yesterday"},  # no window: the times did not parse
        {"query": "up", "end": "last tuesday", "duration": "1h"},
        {"query": "up", "start": "now-1h", "end": "now-2h"},  # not a window: start after end
    ],
)
def test_a_call_that_never_had_a_window_reports_none(arguments: dict[str, Any]) -> None:
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)
    assert _failure(fake, arguments).data is None
    assert fake.to("/api/v1/query_range") == []
