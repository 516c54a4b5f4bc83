"""Celery's thread pool, with every one of its threads started before the first task.

The stock pool starts a thread the first time it has no idle one, and waits for that thread to
run. While the engine's event loop is busy (hundreds of investigations on it) a new thread waits
for the GIL, so a burst of 500 submissions took seconds to reach the loop, one thread start at a
time. Started up front, a thread only picks the job id up and hands it over.
"""

from __future__ import annotations

import threading

from celery.concurrency.thread import TaskPool

START_TIMEOUT_S = 60.0


class PrestartedThreadPool(TaskPool):  # type: ignore[misc]
    def on_start(self) -> None:
        super().on_start()
        # each submission finds every thread busy at the barrier, so it starts a new one
        all_started = threading.Barrier(self.limit + 1)
        for _ in range(self.limit):
            self.executor.submit(all_started.wait, START_TIMEOUT_S)
        all_started.wait(START_TIMEOUT_S)
