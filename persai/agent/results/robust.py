"""Robust statistics of one series as numpy arrays: medians, spreads, a series' baseline.

Means are exact sums (`math.fsum`) and medians the middle of the sorted values, as in
`statistics`, so the figures are the same as they were with Python's lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]

MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533
TAIL_TO_SIGMA = 1.6449
"""The 90th percentile of |x| for normal x, in standard deviations."""
ROUNDING = 1e-6
"""A MAD this small against the mean absolute deviation is a MAD of 0 with rounding errors."""


def median(values: Floats) -> float:
    """The middle value, or the mean of the two middle ones (as `statistics.median`)."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def mean(values: Floats) -> float:
    """The exactly rounded mean (as `statistics.fmean`)."""
    return math.fsum(values.tolist()) / len(values)


def differences(values: Floats) -> Floats:
    """Each value minus the one before it."""
    return values[1:] - values[:-1]


def robust_spread(values: Floats | Sequence[float], center: float) -> float:
    """A robust standard deviation: scaled MAD, or the mean absolute deviation when MAD is 0.

    MAD is 0 when more than half the values are equal (`up`, restart counters, quantised
    rates); the mean absolute deviation still measures the rest. Equal means equal but for
    rounding: the rates of a sparse counter differ by 1e-18 where they are "the same".
    """
    deviations = np.abs(np.asarray(values, dtype=np.float64) - center)
    mad = median(deviations) * MAD_TO_SIGMA
    if mad > ROUNDING * MEAN_AD_TO_SIGMA * float(deviations.max()):  # so above the mean's too
        return mad
    mean_ad = mean(deviations) * MEAN_AD_TO_SIGMA
    return mad if mad > ROUNDING * mean_ad else mean_ad


@dataclass(frozen=True)
class Baseline:
    """What is usual for one series: its median, its spread and its usual step-to-step change.

    `spread` is at least the point-to-point noise (so a smooth trend does not make every
    wobble look large) and `usual_change` the spread of the differences between neighbours.
    """

    center: float
    spread: float
    diffs_center: float
    usual_change: float


def tail_spread(values: Floats, center: float) -> float:
    """A standard deviation read from the 90th percentile of the absolute deviations.

    The same as `robust_spread` for normal noise, and larger where most changes are tiny and
    a few are not (a ratio of sparse counts moves only when an event enters its window): such
    changes are the series' usual, not news. An anomaly's few large changes barely move it.
    """
    deviations = np.abs(values - center)
    rank = tail_rank(len(deviations))
    return float(np.partition(deviations, rank)[rank]) / TAIL_TO_SIGMA


def tail_rank(count: int) -> int:
    """The index of the 90th percentile among `count` sorted values (the nearest rank)."""
    return max(0, math.ceil(0.9 * count) - 1)


def baseline(values: Floats) -> Baseline:
    """The baseline of a series of at least two values."""
    center = median(values)
    diffs = differences(values)
    diffs_center = median(diffs)
    noise = robust_spread(diffs, diffs_center) / math.sqrt(2)
    floor = 1e-9 * max(1.0, abs(center))
    spread = max(robust_spread(values, center), noise, floor)
    usual_change = max(noise * math.sqrt(2), tail_spread(diffs, diffs_center), floor)
    return Baseline(center, spread, diffs_center, usual_change)


def hinge_onset(values: Floats) -> int:
    """Where a change begins: the index from which a flat line followed by a straight rise or
    fall fits `values` best (least squares), for values that end changed.

    A step is a steep hinge, a slow ramp a shallow one, the ramp that `rate(…[5m])` makes of
    a step one five minutes long; the flat part before is the series' usual.
    """
    count = len(values)
    if count < 3:
        return max(0, count - 1)
    index = np.arange(count, dtype=np.float64)
    onsets = np.arange(1, count, dtype=np.float64)
    x = np.maximum(0.0, index[None, :] - onsets[:, None] + 1)  # one row per candidate onset
    x = x - x.mean(axis=1, keepdims=True)
    y = values - values.mean()
    sxx = np.sum(x * x, axis=1)
    sxy = x @ y
    error = float(np.sum(y * y)) - sxy * sxy / np.maximum(sxx, 1e-300)
    return int(onsets[int(np.argmin(error))])
