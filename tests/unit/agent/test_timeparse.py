from datetime import UTC, datetime, timedelta

import pytest

from persai.agent.timeparse import parse_duration, parse_time, rfc3339

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
