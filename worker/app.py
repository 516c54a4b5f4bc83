"""The Celery worker: a thin task that hands a job id to the process's engine."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_shutdown

from persai.agent.llama import ModelClient
from persai.config import Settings
from persai.queue import INVESTIGATE, create_celery
from persai.runtime import Engine

log = logging.getLogger(__name__)

POOL = "worker.pool:PrestartedThreadPool"
"""Celery's thread pool, its threads started up front (`worker.pool`)."""


def create_worker(settings: Settings, *, gateway: ModelClient | None = None) -> Celery:
    """The Celery app of a worker process, with its investigation task and its engine.

    `gateway` replaces the Llama Stack gateway (benchmarks use one that answers at once).
    """
    redis_url = settings.required_redis_url()
    app = create_celery(settings, redis_url)
    engine = Engine(
        settings,
        redis_url,
        celery=app,
        gateway=gateway,
    )

    @app.task(name=INVESTIGATE, ignore_result=True)  # type: ignore[untyped-decorator]
    def investigate(job_id: str) -> None:
        engine.run_job(job_id)

    def start(**_: Any) -> None:
        engine.start()

    def stop(**_: Any) -> None:
        engine.stop()

    worker_init.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)
    return app


def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    gateway: ModelClient | None = None,
    quiet: bool = False,
) -> None:
    """Run a worker in this process until it is told to stop (SIGTERM: warm shutdown);
    `quiet`: without Celery's banner."""
    app = create_worker(settings, gateway=gateway)
    app.conf.worker_pool = POOL
    if quiet:  # nor its "celery@host ready." line (celery.apps.worker logs it after the banner)
        logging.getLogger("celery.apps.worker").setLevel(logging.WARNING)
    app.worker_main(
        [
            *(["--quiet"] if quiet else []),
            "worker",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            f"--loglevel={settings.log_level}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--queues={app.conf.task_default_queue}",
        ]
    )
