"""The garbage collector of a long-running PersAI process (the API, a worker).

Such a process starts with a few hundred thousand objects (modules, classes, the Celery and
FastAPI apps) that live as long as it does, and then carries hundreds of investigations whose
objects live for seconds. With the collector's defaults, every collection of the oldest
generation walks all of the former, and the youngest generation is collected every 700
allocations. In a worker carrying 500 investigations that was 0.3-0.4 s of CPU per batch
(`bench/concurrency.py`); frozen and collected less often, about 0.1 s.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (less deallocations) between collections of the youngest generation (700)."""

_settled = False


def settle() -> None:
    """Once start-up is done: collect, then leave what is alive out of later collections, and
    collect the youngest generation less often. Only the first call in a process does this."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
