"""The worker's Celery pool: every thread started before the first task."""

import threading

from worker.pool import PrestartedThreadPool


def test_every_thread_is_started_before_the_first_task() -> None:
    pool = PrestartedThreadPool(limit=16)
    before = threading.active_count()
    pool.start()
    try:
        assert len(pool.executor._threads) == 16
        assert threading.active_count() - before == 16
        ran = threading.Event()
        pool.executor.submit(ran.set).result(timeout=5)
        assert ran.is_set()
        assert len(pool.executor._threads) == 16  # an idle one took it: no new thread
    finally:
        pool.stop()
