"""Seeded randomness and the shapes real metrics have: counts, daily cycles, windows."""

from __future__ import annotations

import math
import random
from datetime import timedelta

from persai.incidents.model import IncidentParams, Sample

DAY_S = 86_400


def rng_for(scenario: str, params: IncidentParams) -> random.Random:
    """A generator that depends only on the scenario's name and the seed (never on `hash()`)."""
    return random.Random(f"{scenario}:{params.seed}")


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count: exact for small means, normal approximation above 30."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def daily(t: int, phase_s: float = 0.0, depth: float = 0.3) -> float:
    """A daily traffic cycle around 1.0: `1 ± depth`, peaking at 15:00 UTC shifted by `phase_s`."""
    angle = 2 * math.pi * ((t - phase_s - 15 * 3600) % DAY_S) / DAY_S
    return 1.0 + depth * math.cos(angle)


def window(
    rng: random.Random, params: IncidentParams, minutes: float, earliest: float = 0.45
) -> tuple[int, int]:
    """An anomaly window of `minutes`, placed at random in the later part of the range.

    Returns Unix seconds aligned to the step; the window ends at least ten steps before `end`.
    """
    start = params.start.timestamp()
    times = [t for t in params.timestamps() if t >= start]
    length = max(1, round(minutes * 60 / params.step_s))
    first = int(len(times) * earliest)
    last = max(first, len(times) - length - 10)
    begin = rng.randint(first, last)
    return times[begin], times[min(begin + length, len(times) - 1)]


def accumulate(increments: list[float], start: float = 0.0) -> list[float]:
    """Running totals of non-negative increments: a counter's values."""
    total, values = start, []
    for step in increments:
        total += max(0.0, step)
        values.append(total)
    return values


def zip_samples(times: list[int], values: list[float]) -> list[Sample]:
    """Pair timestamps with values."""
    return list(zip(times, values, strict=True))


def minutes(value: float) -> timedelta:
    """A duration of `value` minutes."""
    return timedelta(minutes=value)
