"""The Celery side both the API and the workers share: one broker configuration, one task name.

The message carries the job id only; everything else is in the job record.
"""

from __future__ import annotations

from celery import Celery

from persai.config import Settings

INVESTIGATE = "persai.investigate"
QUEUE = "persai"


def create_celery(settings: Settings, redis_url: str) -> Celery:
    """A Celery app on the Redis broker, configured for long, network-bound investigations.

    The visibility timeout (seconds after which Redis hands an unacknowledged message to another
    worker) must be longer than any investigation, or a running one would be started twice;
    crash recovery within a minute is PersAI's own (job leases), not Celery's.
    """
    visibility_timeout_s = int(settings.investigation_timeout_s + settings.model_call_timeout_s) * 2
    app = Celery("persai", broker=redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=False,
    )
    return app
