"""The series of a result laid on its grid, and their robust statistics row by row.

One row per series, one column per step of the grid; NaN where a series has no point. The
statistics are those `analysis` computes for one series (`robust.baseline`), for all at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from persai.agent.results.events import Grid
from persai.agent.results.presence import is_counter, reset_indices
from persai.agent.results.robust import (
    MAD_TO_SIGMA,
    MEAN_AD_TO_SIGMA,
    ROUNDING,
    TAIL_TO_SIGMA,
    Floats,
    tail_rank,
)

Bools = NDArray[np.bool_]
SeriesInput = tuple[Mapping[str, str], Floats, Floats]
"""Labels, times, values."""
Judged = tuple[Floats, Floats]
"""Times and values as a series' analysis judges them (`analysis.prepare`)."""


@dataclass
class Table:
    """The series laid on the grid: which points exist, the judged values, counter resets."""

    present: Bools
    values: Floats
    counters: Bools
    resets: Bools

    @classmethod
    def build(
        cls, series: Sequence[SeriesInput], judged: Sequence[Judged], grid: Grid, steps: int
    ) -> Table:
        n = len(series)
        table = cls(
            np.zeros((n, steps), dtype=bool),
            np.full((n, steps), np.nan),
            np.zeros(n, dtype=bool),
            np.zeros((n, steps), dtype=bool),
        )
        for i, ((labels, times, values), (judged_times, judged_values)) in enumerate(
            zip(series, judged, strict=True)
        ):
            finite = np.isfinite(values)
            where = index(times[finite], grid, steps)
            table.present[i, where] = True
            table.values[i, index(judged_times, grid, steps)] = judged_values
            if is_counter(labels.get("__name__", "")):
                table.counters[i] = True
                table.resets[i, where[reset_indices(values[finite])]] = True
        return table


def index(times: Floats, grid: Grid, steps: int) -> NDArray[np.int64]:
    """The grid step of each time (the nearest; clipped to the grid)."""
    return np.clip(np.rint((times - grid.start) / grid.step), 0, steps - 1).astype(np.int64)


def runs(mask: Bools, join: int = 1) -> list[tuple[int, int]]:
    """Maximal runs of True (first, last index), joining runs at most `join` steps apart."""
    runs: list[tuple[int, int]] = []
    for i in np.flatnonzero(mask).tolist():
        if runs and i - runs[-1][1] <= join + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def row_median(values: Floats, axis: int = 1) -> Floats:
    """Medians along `axis` of the finite values (NaN where none), as `np.nanmedian` gives
    them: `np.median` where nothing is missing, else the middle of each sorted row (NaN sort
    last), several times faster than `np.nanmedian`'s masked arrays."""
    if not np.isnan(values).any():
        return np.median(values, axis=axis)
    rows = values if axis == 1 else values.T
    if rows.shape[1] == 0:
        return np.full(rows.shape[0], np.nan)
    ordered = np.sort(rows, axis=1)
    counts = np.count_nonzero(~np.isnan(rows), axis=1)
    low = np.maximum(counts - 1, 0) // 2
    high = counts // 2
    middle = (low[:, None], np.minimum(high, rows.shape[1] - 1)[:, None])
    pair = [np.take_along_axis(ordered, i, axis=1)[:, 0] for i in middle]
    return np.where(counts > 0, (pair[0] + pair[1]) / 2, np.nan)


def row_mean(values: Floats) -> Floats:
    """Means of each row's finite values."""
    return np.nanmean(values, axis=1) if np.isnan(values).any() else np.mean(values, axis=1)


def row_spread(values: Floats, center: Floats) -> Floats:
    """Row-wise `robust_spread`: scaled MAD, or the mean absolute deviation where MAD is 0."""
    deviations = np.abs(values - center[:, None])
    mad = row_median(deviations, axis=1) * MAD_TO_SIGMA
    mean_ad = row_mean(deviations) * MEAN_AD_TO_SIGMA
    return np.where(mad > ROUNDING * mean_ad, mad, mean_ad)


def row_scores(values: Floats) -> tuple[Floats, Floats, Floats]:
    """Row by row, as `analysis` judges one series: how many usual spreads each value lies from
    the row's median, how many usual changes each change is (the first step NaN), the medians."""
    n = values.shape[0]
    usable = np.count_nonzero(np.isfinite(values), axis=1) >= 3
    center = row_median(values, axis=1)
    diffs = values[:, 1:] - values[:, :-1]
    diffs_center = row_median(diffs, axis=1)
    noise = row_spread(diffs, diffs_center) / math.sqrt(2)
    floor = 1e-9 * np.maximum(1.0, np.abs(center))
    spread = np.fmax(np.fmax(row_spread(values, center), noise), floor)
    tail = row_tails(np.abs(diffs - diffs_center[:, None])) / TAIL_TO_SIGMA
    usual = np.fmax(np.fmax(noise * math.sqrt(2), tail), floor)
    z = np.where(usable[:, None], (values - center[:, None]) / spread[:, None], np.nan)
    jumps = np.where(usable[:, None], (diffs - diffs_center[:, None]) / usual[:, None], np.nan)
    return z, np.concatenate([np.full((n, 1), np.nan), jumps], axis=1), center


def row_tails(deviations: Floats) -> Floats:
    """Row-wise 90th percentiles (nearest rank) of the finite values, as `tail_spread` reads
    one series' (NaN for a row without any)."""
    ordered = np.sort(deviations, axis=1)  # NaN last
    counts = np.count_nonzero(np.isfinite(deviations), axis=1)
    ranks = np.array([tail_rank(int(c)) for c in counts])[:, None]
    tails = np.take_along_axis(ordered, ranks, axis=1)[:, 0]
    return np.where(counts > 0, tails, np.nan)
