"""Scoring one answer: a pure function of the answer, its steps and usage, and what was expected.

Each check is `True` (met), `False` (missed, with a reason) or `None` (does not apply to this
scenario). An answer passes when its investigation succeeded and every check that applies is met:

- culprit: the answer names the culprit's label value (any accepted spelling), and names no more
  than `max_others` of the other candidates (listing every service is not finding one);
- window: a time the answer states lies in the anomaly window, widened by `tolerance` on both
  sides and by `lag` after it (a `rate()` trails the raw data); the asked range's own bounds do
  not count (they are in the question, not a finding);
- promql: a backticked query (inline or fenced) uses one of the expected metric families;
- uncertainty (only where the data is inconclusive): the answer says nothing is wrong, no anomaly
  was found or the data is inconclusive, and blames no cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from persai.eval.answers import (
    blames_something,
    cited_queries,
    mentioned_times,
    names_value,
    says_all_clear,
    uses_metric,
)
from persai.jobs import Step, StepStatus, Usage

Check = tuple[bool | None, str | None]
"""A check's verdict and, when it is missed, why."""
_SAME_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Expected:
    """What a good answer to one scenario finds."""

    culprit: tuple[str, ...] = ()
    """Label values that name the culprit (any one of them will do); empty when there is none."""
    others: tuple[str, ...] = ()
    """The other values of the culprit's label in the data: candidates a guess would list."""
    window_start: datetime | None = None
    window_end: datetime | None = None
    tolerance: timedelta = timedelta(minutes=5)
    lag: timedelta = timedelta(0)
    metrics: tuple[str, ...] = ()
    """Metric families a good query uses (any one of them)."""
    inconclusive: bool = False
    """Nothing is wrong in the data: a good answer says so and blames nothing."""
    asked_range: tuple[datetime, datetime] | None = None
    max_others: int = 3


class Checks(BaseModel):
    culprit: bool | None = None
    window: bool | None = None
    promql: bool | None = None
    uncertainty: bool | None = None


class Score(BaseModel):
    """The verdict on one answer, with the cost of getting it."""

    passed: bool
    checks: Checks
    reasons: list[str]
    """Why each missed check was missed (empty when the answer passed)."""
    times: list[datetime]
    """Every time the answer states, UTC."""
    tool_calls: int
    tool_errors: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    wall_s: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def score(
    answer: str | None,
    steps: Sequence[Step],
    usage: Usage,
    expected: Expected,
    *,
    status: str = "succeeded",
    error: str | None = None,
    wall_s: float = 0.0,
) -> Score:
    """Score an investigation's answer against what was expected (see the module docstring)."""
    text = answer or ""
    times = _stated_times(text, expected)
    verdicts = {
        "culprit": _culprit(text, expected),
        "window": _window(times, expected),
        "promql": _promql(text, expected),
        "uncertainty": _uncertainty(text, expected),
    }
    reasons = [reason for _, reason in verdicts.values() if reason]
    if status != "succeeded":
        reasons.insert(0, f"investigation {status}" + (f": {error}" if error else ""))
    checks = Checks(**{name: verdict for name, (verdict, _) in verdicts.items()})
    met = all(verdict is not False for verdict, _ in verdicts.values())
    return Score(
        passed=status == "succeeded" and met,
        checks=checks,
        reasons=reasons,
        times=times,
        tool_calls=usage.tool_calls or len(steps),
        tool_errors=sum(1 for step in steps if step.status == StepStatus.ERROR),
        model_calls=usage.model_calls,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        wall_s=round(wall_s, 3),
    )


def _stated_times(text: str, expected: Expected) -> list[datetime]:
    if expected.window_start and expected.window_end:
        near = expected.window_start + (expected.window_end - expected.window_start) / 2
    elif expected.asked_range:
        near = expected.asked_range[1]
    else:
        return []
    return mentioned_times(text, near)


def _culprit(text: str, expected: Expected) -> Check:
    if not expected.culprit or expected.inconclusive:
        return None, None
    if not any(names_value(text, value) for value in expected.culprit):
        return False, f"culprit {expected.culprit[0]} not named"
    others = [v for v in expected.others if v not in expected.culprit and names_value(text, v)]
    if len(others) > expected.max_others:
        listed = ", ".join(others[:4]) + (", …" if len(others) > 4 else "")
        return False, f"names {len(others)} other candidates too ({listed}): a list, not a finding"
    return True, None


def _window(times: Sequence[datetime], expected: Expected) -> Check:
    start, end = expected.window_start, expected.window_end
    if start is None or end is None:
        return None, None
    bounds = expected.asked_range or ()
    findings = [t for t in times if all(abs(t - b) >= _SAME_MINUTE for b in bounds)]
    low, high = start - expected.tolerance, end + expected.lag + expected.tolerance
    if any(low <= t <= high for t in findings):
        return True, None
    window = f"{start:%H:%M} to {end:%H:%M} UTC"
    minutes = f"{expected.tolerance.total_seconds() / 60:g} min"
    if not findings:
        return False, f"states no time (anomaly {window})"
    stated = ", ".join(f"{t:%H:%M}" for t in findings[:4])
    return False, f"no time within {minutes} of the anomaly ({window}); states {stated}"


def _promql(text: str, expected: Expected) -> Check:
    if not expected.metrics:
        return None, None
    queries = cited_queries(text)
    if any(uses_metric(query, expected.metrics) for query in queries):
        return True, None
    families = " or ".join(expected.metrics)
    if not queries:
        return False, f"cites no PromQL in backticks (expected one using {families})"
    return False, f"no backticked PromQL uses {families}"


def _uncertainty(text: str, expected: Expected) -> Check:
    if not expected.inconclusive:
        return None, None
    if blames_something(text):
        return False, "blames a cause although nothing is wrong"
    if not says_all_clear(text):
        return False, "does not say that nothing is wrong or that the data is inconclusive"
    return True, None
