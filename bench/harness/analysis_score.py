"""Judging one tool result against its probe's ground truth, from the text the model reads.

Only what the text says counts: a series "stands out" when the result's summary lists it under
"Stand out (N of M series …)" (range) or "Unusual values (N, …)" (instant); N is the number
flagged, whether all of them fit the budget or not. A flagged series that the text does not
show counts against precision (the model cannot tell it is a culprit). A small instant result
is listed in full, largest first, and flags nothing: its culprits are found when they come first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from persai.agent.results import estimate_tokens
from persai.incidents.analysis_model import Culprit, Probe

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
_STAND_OUT = re.compile(r"^Stand out \((\d+) of (\d+) series")
_UNUSUAL = re.compile(r"^Unusual values \((\d+),")
_LISTING = re.compile(r"^\d+ series, largest value first\.$")
_SERIES_LINE = re.compile(r"^(?:[a-zA-Z_:][\w:]*)?(?:\{.*\})? \S*[^\s:]$")


@dataclass(frozen=True)
class Reading:
    """What a result says stands out: how many, the lines shown (in order), and a listing."""

    flagged: int
    lines: tuple[str, ...]
    listing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Score:
    """One probe's figures."""

    flagged: int
    true_flagged: int
    culprits: int
    found: int
    first: bool | None
    """Whether a culprit is ranked first; None for a probe without culprits."""
    windows: int
    """Culprits whose line names the start of their anomaly within one step."""
    tokens: int
    budget: int


def read(text: str) -> Reading:
    """The flagged series of a range or instant result's text."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if match := _STAND_OUT.match(line):
            shown = _take(lines[index + 1 :], lambda s: s.startswith("- "))
            return Reading(int(match.group(1)), shown)
        if match := _UNUSUAL.match(line):
            shown = _take(lines[index + 1 :], _is_series_line)
            return Reading(int(match.group(1)), shown)
        if _LISTING.match(line):
            return Reading(0, (), _take(lines[index + 1 :], _is_series_line))
    return Reading(0, ())


def _is_series_line(line: str) -> bool:
    """`{labels} value`, `name{labels} value` or `name value`: one series of an instant result."""
    return bool(_SERIES_LINE.match(line))


def _take(lines: list[str], keep: Callable[[str], bool]) -> tuple[str, ...]:
    """The lines up to the first that `keep` refuses."""
    taken = []
    for line in lines:
        if not keep(line):
            break
        taken.append(line)
    return tuple(taken)


def names(line: str, culprit: Culprit) -> bool:
    """Whether a line names the culprit's series (every one of its labels, exactly)."""
    return all(f'{k}="{v}"' in line for k, v in culprit.labels.items())


def score(probe: Probe, text: str, budget: int, step_s: float, start: datetime | None) -> Score:
    """The figures of one probe's result `text` (`step_s`, `start`: the range's, if any)."""
    reading = read(text)
    culprits = probe.culprits
    true_flagged = sum(1 for line in reading.lines if any(names(line, c) for c in culprits))
    if reading.listing:
        top = reading.listing[: max(1, len(culprits))]
        found = sum(1 for c in culprits if any(names(line, c) for line in top))
        first_line = reading.listing[0]
    else:
        found = sum(1 for c in culprits if any(names(line, c) for line in reading.lines))
        first_line = reading.lines[0] if reading.lines else ""
    windows = 0
    if probe.tool == "execute_range_query" and start is not None:
        for culprit in culprits:
            line = next((x for x in reading.lines if names(x, culprit)), "")
            windows += named_window(line, culprit, step_s, start)
    return Score(
        flagged=reading.flagged,
        true_flagged=true_flagged,
        culprits=len(culprits),
        found=found,
        first=any(names(first_line, c) for c in culprits) if culprits else None,
        windows=windows,
        tokens=estimate_tokens(text),
        budget=budget,
    )


def first_event(line: str) -> str:
    """The first (most telling) event of a standout line: after the selector, up to `; `."""
    body = line.split("}: ", 1)[-1] if "}: " in line else line.split(": ", 1)[-1]
    return re.split(r"; |\. min / max", body, maxsplit=1)[0]


def named_window(line: str, culprit: Culprit, step_s: float, start: datetime) -> bool:
    """Whether the culprit's first event names when its anomaly began, within one step of the
    first evaluation time that can show it (Prometheus evaluates at the range's steps, each
    seeing the samples up to it).

    An anomaly that began before the range is named by "from the start".
    """
    event = first_event(line)
    if not event:
        return False
    if culprit.start < start:
        return "from the start" in event
    # the first evaluation time of the range at or after the anomaly's first sample
    steps = math.ceil((culprit.start - start).total_seconds() / step_s)
    seen = start + timedelta(seconds=steps * step_s)
    times = [datetime.fromisoformat(t) for t in _TIME.findall(event)]
    return bool(times) and abs(times[0] - seen) <= timedelta(seconds=step_s)
