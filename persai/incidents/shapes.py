"""Building blocks of the analysis scenarios: anomaly shapes, counters, histograms, gauges.

A `Shape` multiplies a series' level over time (a spike, a step that stays, a slow ramp, a dip);
the builders turn a level over time into the samples a real exporter would expose: a counter
of Poisson-distributed events, a latency histogram's cumulative buckets, a noisy gauge.
Every random draw comes from the generator passed in, so a seed gives the same data.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from persai.incidents.model import Family, Sample
from persai.incidents.noise import poisson

ShapeKind = Literal["spike", "step", "ramp", "dip"]
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Latency histogram bucket bounds in seconds (the client libraries' defaults, and 10 s)."""


@dataclass(frozen=True)
class Shape:
    """How much an anomaly multiplies a series' level at each moment (1 outside it).

    `spike`: `factor` from `begin` to `end`, then back. `step`: `factor` from `begin` on.
    `ramp`: rises linearly from 1 at `begin` to `factor` at `end`, and stays there.
    `dip`: like a spike, with a factor below 1.
    """

    kind: ShapeKind
    begin: int
    end: int
    factor: float

    def at(self, t: float) -> float:
        if t < self.begin:
            return 1.0
        if self.kind in ("spike", "dip"):
            return self.factor if t < self.end else 1.0
        if self.kind == "step" or t >= self.end:
            return self.factor
        return 1.0 + (self.factor - 1.0) * (t - self.begin) / max(1, self.end - self.begin)


NO_SHAPE = Shape("spike", 0, 0, 1.0)


def scaled(base: float, shape: Shape = NO_SHAPE) -> Callable[[int], float]:
    """The level `base` multiplied by `shape` at each moment."""

    def level(t: int) -> float:
        return base * shape.at(t)

    return level


def counter(
    rng: random.Random, times: Sequence[int], rate: Callable[[int], float], step_s: int
) -> list[float]:
    """A counter's values: Poisson events at `rate(t)` per second, summed from zero."""
    total, values = 0.0, []
    for t in times:
        total += poisson(rng, rate(t) * step_s)
        values.append(total)
    return values


def restarted(values: Sequence[float], times: Sequence[int], at: Sequence[int]) -> list[float]:
    """A counter that starts again from zero at each time in `at` (its process restarted)."""
    out, base, previous, index = [], 0.0, 0.0, 0
    restarts = sorted(at)
    for t, value in zip(times, values, strict=True):
        while index < len(restarts) and t >= restarts[index]:
            base = previous  # what was counted before the restart is lost
            index += 1
        out.append(value - base)
        previous = value
    return out


def gauge(
    rng: random.Random, times: Sequence[int], level: Callable[[int], float], noise: float
) -> list[float]:
    """A gauge around `level(t)` with a relative Gaussian wobble of `noise` (0.03 = 3 %)."""
    return [max(0.0, level(t) * (1 + rng.gauss(0, noise))) for t in times]


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1 + math.erf((math.log(x) - math.log(median)) / (sigma * math.sqrt(2))))


def add_histogram(
    family: Family,
    labels: dict[str, str],
    samples: tuple[Sequence[int], Callable[[int], float], Callable[[int], float]],
    rng: random.Random,
    step_s: int,
) -> None:
    """Add a latency histogram's `_bucket`, `_sum` and `_count` series to `family`.

    `samples`: the times, the requests per second at each and the median latency (seconds) at
    each; latencies are log-normal (sigma 0.5), as request latencies roughly are.
    """
    times, rps, median = samples
    sigma = 0.5
    bounds = (*BUCKETS, math.inf)
    cumulative = [0.0] * len(bounds)
    series: list[list[Sample]] = [[] for _ in bounds]
    counts: list[Sample] = []
    sums: list[Sample] = []
    total_sum = 0.0
    for t in times:
        n = poisson(rng, rps(t) * step_s)
        m = median(t)
        below = 0
        for b, le in enumerate(bounds):
            share = 1.0 if math.isinf(le) else _lognormal_cdf(le, m, sigma)
            below = max(below, min(n, round(n * share)))
            cumulative[b] += below
            series[b].append((t, cumulative[b]))
        total_sum += n * m * math.exp(sigma**2 / 2)
        counts.append((t, cumulative[-1]))
        sums.append((t, round(total_sum, 3)))
    for le, points in zip(bounds, series, strict=True):
        le_text = "+Inf" if math.isinf(le) else repr(le)
        family.add({**labels, "le": le_text}, points, "_bucket")
    family.add(labels, sums, "_sum")
    family.add(labels, counts, "_count")
