"""How unusual something must be to be reported: robust z-scores, in "usual spreads"."""

import math

PEAK_Z = 6.0
"""A point this many usual spreads from the median makes a series stand out."""
EXTEND_Z = 3.0
"""An unusual stretch extends over neighbouring points beyond this many spreads."""
JUMP_Z = 8.0
"""A change between two neighbouring points this many usual changes large is sudden."""
MIN_CHANGE = 0.1
"""…and lie at least this fraction of the median away (a 2 % wobble of a smooth line is no news)."""
MAX_SCORE = 1000.0
MAD_SE = 1.166
"""The standard error of a scaled MAD, in standard deviations times the square root of the
number of independent points it was read from: a spread read from few points may be low."""


def peak_bar(points: int, window_points: float = 1.0) -> float:
    """`PEAK_Z`, raised by one standard error of the spread read from `points` points of
    which `window_points` neighbours at a time share one window's samples (`rate(x[5m])`
    every 30 s: 10). 6.5 for 240 independent points, 7.4 for 240 points of 5-minute windows.
    """
    independent = max(1.0, points / max(1.0, window_points))
    return PEAK_Z * (1 + MAD_SE / math.sqrt(independent))
