"""What a PromQL query's text says about how to judge its result.

A range function's window (`rate(x[5m])`) makes neighbouring points of a range result share
most of their samples, so they are not independent; at the edges of the data those windows are
partial. `histogram_quantile` reads a quantile from cumulative buckets by linear
interpolation: a change smaller than a good part of a bucket may be just the estimate moving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from persai.agent.results.thresholds import MIN_CHANGE

_RANGE = re.compile(r"\[\s*(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)\s*(?:[:\]])")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
HISTOGRAM_MIN_CHANGE = 0.25
"""A quantile read from buckets that grow 2-2.5x each (the client libraries' defaults) moves by
a quarter within a bucket and across a bound with no change in the latencies themselves."""


def range_window_s(query: str) -> float:
    """The longest range-vector window of the query in seconds (`[5m]`: 300), 0 for none."""
    return max((float(n) * _UNIT_S[u] for n, u in _RANGE.findall(query)), default=0.0)


@dataclass(frozen=True)
class Judging:
    """How the series of one result are judged.

    `min_change`: the smallest change, as a share of a series' median, that can stand out.
    `window_points`: how many neighbouring points share one window's samples (1: none).
    """

    min_change: float = MIN_CHANGE
    window_points: float = 1.0


def judging(query: str, step_s: float) -> Judging:
    """How to judge the result of `query` evaluated every `step_s` seconds."""
    min_change = HISTOGRAM_MIN_CHANGE if "histogram_quantile" in query else Judging.min_change
    window = range_window_s(query)
    return Judging(min_change, max(1.0, window / step_s) if step_s > 0 else 1.0)
