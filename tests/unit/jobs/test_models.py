"""TimeRange, the dashboard's range a client sends: whatever it holds, it is accepted in UTC
within the bounds the tools compute with, or refused with a ValidationError (a 422)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from persai.jobs import TimeRange


def test_a_time_without_a_zone_beside_one_with_a_zone_is_utc() -> None:
    # comparing them (start < end) used to raise TypeError: a 500
    span = TimeRange.model_validate(
        {"start": "2026-11-24T13:00:00", "end": "2026-11-24T15:00:00+01:00"}
    )

    assert span.start == datetime(2026, 11, 24, 13, tzinfo=UTC)
    assert span.end == datetime(2026, 11, 24, 14, tzinfo=UTC)
    assert span.start.tzinfo is UTC
    assert span.end.tzinfo is UTC


def test_a_mixed_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValidationError, match="start must be before end"):
        TimeRange.model_validate(
            {"start": "2026-11-24T14:00:00", "end": "2026-11-24T15:00:00+02:00"}
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"duration": "99999999999999w"}, "duration '99999999999999w' is out of range"),
        ({"duration": "3651d"}, "out of range (0 to 3650 days)"),
        ({"duration": "9" * 17 + "s"}, "at most 16 characters"),
        (
            {"start": "0001-01-01T00:00:00+01:00", "end": "2026-11-24T14:00:00Z"},
            "out of range (1970 to 2200)",
        ),
        (
            {"start": "2026-11-24T14:00:00Z", "end": "9999-12-31T23:59:59-14:00"},
            "out of range (1970 to 2200)",
        ),
        ({"start": "1969-12-31T23:00:00Z", "end": "2026-11-24T14:00:00Z"}, "out of range"),
    ],
)
def test_ranges_out_of_bounds_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        TimeRange.model_validate(body)


def test_the_bounds_themselves_are_accepted() -> None:
    assert TimeRange(duration="3650d").duration == "3650d"
    span = TimeRange.model_validate(
        {"start": "1970-01-01T00:00:00Z", "end": "2200-01-01T00:00:00Z"}
    )
    assert span.end == datetime(2200, 1, 1, tzinfo=UTC)


def test_a_range_of_no_length_is_refused() -> None:
    with pytest.raises(ValidationError, match="longer than 0"):
        TimeRange(duration="0s")
