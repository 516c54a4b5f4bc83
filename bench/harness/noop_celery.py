"""The baseline: a bare Celery no-op round trip on the same Redis (broker and result backend).

    python -m bench.harness.noop_celery --redis-url redis://...   # the worker
    noop_celery(redis_url).send_task(NOOP).get()                  # one round trip

The app is configured like PersAI's (JSON, late acks, prefetch 1, the threads pool), plus the
Redis result backend that `.get()` needs.
"""

from __future__ import annotations

import argparse
import logging

from celery import Celery

from persai.logging import setup_logging

NOOP = "bench.noop"
QUEUE = "bench-noop"


def noop_celery(redis_url: str) -> Celery:
    app = Celery("bench-noop", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,
    )

    @app.task(name=NOOP)  # type: ignore[untyped-decorator]
    def noop() -> None:
        return None

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    setup_logging(args.log_level)
    logging.getLogger(__name__).info("no-op worker on %s", args.redis_url)
    noop_celery(args.redis_url).worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={args.concurrency}",
            f"--loglevel={args.log_level}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--queues={QUEUE}",
        ]
    )


if __name__ == "__main__":
    main()
