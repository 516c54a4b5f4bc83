"""Choosing a range query's step so that each series has a readable number of points."""

from __future__ import annotations

import math
from datetime import datetime

# Steps people read easily, in seconds; past a day, whole days.
_NICE_STEPS_S = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
)  # fmt: skip


def choose_step(start: datetime, end: datetime, max_points_per_series: int = 250) -> float:
    """The smallest nice step (1 s, 15 s, 1 min, 5 min, 1 h, …) giving at most that many points.

    A range of 2 h with the default of 250 points gives 30 s; an empty range gives 1 s.
    """
    seconds = max(0.0, (end - start).total_seconds())
    needed = seconds / max(1, max_points_per_series - 1)
    for step in _NICE_STEPS_S:
        if step >= needed:
            return float(step)
    return float(math.ceil(needed / 86400) * 86400)
