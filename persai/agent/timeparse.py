"""Times and durations as people and models write them; everything resolves to UTC.

Whatever is written, the result lies within `persai.timebounds` (else a ValueError), so that no
arithmetic on it can overflow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from persai.timebounds import bounded_duration, bounded_time, from_unix

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> timedelta:
    """`90s`, `5m`, `1h30m`, `2d` (Prometheus style) or plain seconds, at most MAX_DURATION;
    ValueError otherwise."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = _prometheus_seconds(text)
    return bounded_duration(seconds, text)


def _prometheus_seconds(text: str) -> float:
    position, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h, 2d)")
    return seconds


def parse_time(text: str, now: datetime) -> datetime:
    """RFC 3339 (naive means UTC), unix seconds, `now` or `now-1h`, between EARLIEST and LATEST;
    always returns UTC."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("now-"):
        return bounded_time(now - parse_duration(text[4:]), text)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return from_unix(seconds, text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r} (use RFC 3339, unix seconds or now-1h)") from exc
    return bounded_time(parsed, text)


def rfc3339(moment: datetime) -> str:
    """`2026-11-24T14:05:00Z`: UTC, seconds precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
