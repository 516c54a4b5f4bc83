"""PersAI's Celery worker: the app and its thin task."""

from worker.app import create_worker, run_worker

__all__ = ["create_worker", "run_worker"]
