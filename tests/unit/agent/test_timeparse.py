from datetime import UTC, datetime, timedelta

import pytest

from persai.agent.timeparse import parse_duration, parse_time, rfc3339
from persai.timebounds import EARLIEST, LATEST, MAX_DURATION

NOW = datetime(2026, 11, 24, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("90", 90), ("1.5h", 5400)],
)
def test_durations_in_prometheus_style(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-5m"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-1h", NOW - timedelta(hours=1)),
        ("2026-11-24T13:00:00Z", datetime(2026, 11, 24, 13, tzinfo=UTC)),
        ("2026-11-24T15:00:00+02:00", datetime(2026, 11, 24, 13, tzinfo=UTC)),
        ("2026-11-24T13:00:00", datetime(2026, 11, 24, 13, tzinfo=UTC)),
        ("1795525200", datetime.fromtimestamp(1795525200, UTC)),
    ],
)
def test_times_resolve_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text, NOW)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_rfc3339_is_utc_with_z() -> None:
    assert rfc3339(datetime(2026, 11, 24, 15, 0, 7, tzinfo=UTC)) == "2026-11-24T15:00:07Z"


def test_the_longest_duration_accepted_is_ten_years() -> None:
    assert parse_duration("3650d") == MAX_DURATION
    assert parse_duration(str(MAX_DURATION.total_seconds())) == MAX_DURATION


@pytest.mark.parametrize(
    "text", ["99999999999999w", "1e20", "3651d", "11y", "9" * 400 + "s", "inf", "nan", "-5"]
)
def test_durations_out_of_range_are_refused_with_the_range(text: str) -> None:
    # each used to overflow (OverflowError) or to be a negative or NaN timedelta
    with pytest.raises(ValueError, match=r"duration .* is out of range \(0 to 3650 days\)"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text",
    [
        "1e20",  # unix seconds beyond any datetime (OverflowError)
        "1e15",  # ... beyond year 9999 (ValueError from fromtimestamp)
        "-1",  # before 1970
        "nan",
        "-inf",
        "7258118401",  # 2200-01-01T00:00:01Z
        "2200-01-01T00:00:01Z",
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC (OverflowError)
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC (OverflowError)
    ],
)
def test_times_out_of_range_are_refused_with_the_range(text: str) -> None:
    with pytest.raises(ValueError, match=r"time .* is out of range \(1970 to 2200\)"):
        parse_time(text, NOW)


def test_a_relative_time_too_far_back_is_refused() -> None:
    with pytest.raises(ValueError, match=r"duration '99999999d' is out of range"):
        parse_time("now-99999999d", NOW)
    assert parse_time("now-3650d", NOW) == NOW - MAX_DURATION


def test_the_bounds_themselves_are_accepted() -> None:
    assert parse_time(str(EARLIEST.timestamp()), NOW) == EARLIEST
    assert parse_time("2200-01-01T00:00:00Z", NOW) == LATEST
    assert parse_time("2026-11-24T13:00:00-14:00", NOW) == datetime(2026, 11, 25, 3, tzinfo=UTC)


def test_a_long_input_is_shown_cut() -> None:
    with pytest.raises(ValueError, match="out of range") as caught:
        parse_duration("9" * 10_000)
    assert len(str(caught.value)) < 100
