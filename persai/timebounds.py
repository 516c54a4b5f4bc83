"""The times and durations PersAI accepts from anyone: API bodies, tool arguments from the model.

Bounded, so that nothing a client or a model writes can overflow what is done with it later
(`now - duration`, `end - 1 h`, `datetime.fromtimestamp`, Prometheus's milliseconds): anything
outside is a ValueError that says what is accepted. The API's `TimeRange` and the agent's
`timeparse` share these bounds, so that a range the API accepted is one every tool can use.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

__all__ = ["EARLIEST", "LATEST", "MAX_DURATION", "bounded_duration", "bounded_time", "from_unix"]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest time accepted: no Prometheus holds samples from before the Unix epoch."""
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The latest time accepted: beyond any dashboard, far from where datetimes overflow (9999)."""
MAX_DURATION = timedelta(days=3650)
"""The longest duration accepted (a range, a step, `now-…`): longer than Prometheus keeps data."""


def bounded_duration(seconds: float, text: str) -> timedelta:
    """`seconds` as a timedelta when it is a duration PersAI accepts (0 to MAX_DURATION)."""
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_DURATION.total_seconds()):
        raise ValueError(
            f"the duration {_shown(text)} is out of range (0 to {MAX_DURATION.days} days)"
        )
    return timedelta(seconds=seconds)


def bounded_time(moment: datetime, text: str) -> datetime:
    """`moment` in UTC (naive means UTC) when it lies between EARLIEST and LATEST."""
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, which is before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(_out_of_range(text))
    return utc


def from_unix(seconds: float, text: str) -> datetime:
    """Unix seconds as a UTC datetime when they lie between EARLIEST and LATEST."""
    if not (math.isfinite(seconds) and EARLIEST.timestamp() <= seconds <= LATEST.timestamp()):
        raise ValueError(_out_of_range(text))
    return datetime.fromtimestamp(seconds, UTC)


def _out_of_range(text: str) -> str:
    return f"the time {_shown(text)} is out of range ({EARLIEST.year} to {LATEST.year})"


def _shown(text: str) -> str:
    """The input as a message shows it: quoted, and cut when long (it may be anything)."""
    return repr(text if len(text) <= 40 else text[:40] + "…")
