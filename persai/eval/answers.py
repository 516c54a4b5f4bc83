"""Reading an answer as a grader would: the times it gives, the PromQL it cites, what it blames.

Plain functions of the answer's Markdown text; they know nothing of scenarios or models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?"
    r"\s*(?P<zone>Z|[+-]\d{2}:?\d{2}|UTC)?",
    re.IGNORECASE,
)
# A time of day on its own (`14:05`, `14:05:30`), not part of an address (`10.0.0.12:9100`).
_CLOCK = re.compile(r"(?<![\w.:/-])(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?(?!\w|:\d)")
_FENCED = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_FAMILY_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count", "_created")

_ALL_CLEAR = re.compile(
    r"nothing (?:\w+ )?(?:is |looks |seems |appears )?"
    r"(?:wrong|unusual|abnormal|anomalous|out of the ordinary|stands out)"
    r"|\bno (?:\w+ ){0,4}(?:anomal\w*|incident|problem|issue|outage|spikes?|regression)s?\b"
    r"|(?:everything|all \w+) (?:\w+ )?(?:looks|seems|appears|is|are) "
    r"(?:normal|fine|healthy|ok|okay|as expected)"
    r"|within (?:the |their |its )?(?:normal|usual|expected)"
    r"|\b(?:looks|look|is|are|appears|appear|seems|seem) (?:(?!not\b)\w+ )?(?:normal|healthy)\b"
    r"|\binconclusive\b"
    r"|(?:did not|didn't|could not|couldn't|do not|don't|cannot|can't) "
    r"(?:find|see|detect|identify) (?:any|an?|evidence)",
    re.IGNORECASE,
)
_BLAME = re.compile(
    r"\b(?:root cause|culprit) (?:is|was)\b(?! (?:not|unclear|unknown))"
    r"|\bcaused by\b|\bis to blame\b|\bis responsible for\b",
    re.IGNORECASE,
)


def mentioned_times(answer: str, near: datetime) -> list[datetime]:
    """Every time the answer states, in UTC, in the order written.

    Full timestamps (`2026-11-24T14:05:00Z`, `2026-11-24 14:05 UTC`) are taken as written (no
    zone means UTC). A bare time of day (`14:05`, `14:05 UTC`) is put on whichever of the days
    around `near` brings it closest to `near`.
    """
    found: list[tuple[int, datetime]] = []
    covered: list[tuple[int, int]] = []
    for match in _DATETIME.finditer(answer):
        moment = _full_time(match)
        if moment is not None:
            found.append((match.start(), moment))
            covered.append(match.span())
    for match in _CLOCK.finditer(answer):
        if any(start <= match.start() < end for start, end in covered):
            continue
        moment = _clock_time(match, near)
        if moment is not None:
            found.append((match.start(), moment))
    return [moment for _, moment in sorted(found, key=lambda item: item[0])]


def _full_time(match: re.Match[str]) -> datetime | None:
    zone = (match["zone"] or "Z").upper()
    if zone in ("Z", "UTC"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    text = f"{match['date']}T{int(match['h']):02d}:{match['m']}:{match['s'] or '00'}{zone}"
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def _clock_time(match: re.Match[str], near: datetime) -> datetime | None:
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    near = near.astimezone(UTC)
    day = near.replace(hour=hour, minute=minute, second=second, microsecond=0)
    candidates = (day - timedelta(days=1), day, day + timedelta(days=1))
    return min(candidates, key=lambda moment: abs(moment - near))


def cited_queries(answer: str) -> list[str]:
    """The backticked spans of the answer: fenced code blocks and inline code, in that order."""
    fenced = [block.strip() for block in _FENCED.findall(answer)]
    rest = _FENCED.sub(" ", answer)
    return [q for q in fenced + [span.strip() for span in _INLINE.findall(rest)] if q]


def uses_metric(query: str, families: Iterable[str]) -> bool:
    """Whether the PromQL uses one of the metric families (`x` covers `x_bucket`, `x_total`…)."""
    names = {
        family.removesuffix("_total") + suffix for family in families for suffix in _FAMILY_SUFFIXES
    } | set(families)
    return any(identifier in names for identifier in _identifiers(query))


def _identifiers(query: str) -> Iterator[str]:
    # Label values in quotes are not metric names.
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    return (match.group(0) for match in _IDENTIFIER.finditer(unquoted))


def names_value(answer: str, value: str) -> bool:
    """Whether the answer names the label value as a whole word (`node-1` is not `node-10`)."""
    if not value:
        return False
    pattern = rf"(?<![\w./:-]){re.escape(value)}(?![\w/:-]|\.\w)"
    return re.search(pattern, answer, re.IGNORECASE) is not None


def says_all_clear(answer: str) -> bool:
    """Whether the answer says nothing is wrong, that no anomaly was found, or "inconclusive"."""
    return _ALL_CLEAR.search(answer) is not None


def blames_something(answer: str) -> bool:
    """Whether the answer names a cause outright (`the root cause is`, `caused by`…)."""
    return _BLAME.search(answer) is not None
