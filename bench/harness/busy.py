"""A process that keeps a share of one core busy, as other tenants of a shared machine do.

    python -m bench.harness.busy --share 0.6

It spins for `share` of every 10 ms and sleeps the rest, until it is stopped.
"""

from __future__ import annotations

import argparse
import time

PERIOD_S = 0.010


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--share", type=float, default=0.6, help="of one core, 0 to 1")
    share = min(1.0, max(0.0, parser.parse_args().share))
    while True:
        started = time.monotonic()
        while time.monotonic() - started < share * PERIOD_S:
            pass
        time.sleep((1 - share) * PERIOD_S)


if __name__ == "__main__":
    main()
