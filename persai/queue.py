"""The Celery side both the API and the workers share: one broker configuration, one task name.

The message carries the job id only; everything else is in the job record.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.transport import redis as redis_transport

from persai.config import Settings

INVESTIGATE = "persai.investigate"
QUEUE = "persai"


def create_celery(settings: Settings, redis_url: str) -> Celery:
    """A Celery app on the Redis broker, configured for long, network-bound investigations.

    The visibility timeout (seconds after which Redis hands an unacknowledged message to another
    worker) must be longer than any investigation, or a running one would be started twice;
    crash recovery within a minute is PersAI's own (job leases), not Celery's. With Sentinels
    (PERSAI_REDIS_SENTINELS) the broker is kombu's Sentinel transport, which asks them for the
    master and follows it when it fails over.
    """
    visibility_timeout_s = int(settings.investigation_timeout_s + settings.model_call_timeout_s) * 2
    options: dict[str, Any] = {"visibility_timeout": visibility_timeout_s}
    broker = redis_url
    if settings.sentinels:
        broker = broker_url(settings, redis_url)
        options["master_name"] = settings.redis_master_name
        options["sentinel_kwargs"] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    app = Celery("persai", broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a failover is waited out, however long
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=False,
    )
    return app


def broker_url(settings: Settings, redis_url: str) -> str:
    """kombu's URL of the Sentinels: `sentinel://[user:password@]host:port/db;...`, the
    credentials and database those of `redis_url` (those of the master)."""
    parts = urlsplit(redis_url)
    credentials = parts.netloc.rpartition("@")[0]
    prefix = f"{credentials}@" if credentials else ""
    database = parts.path.strip("/") or "0"
    return ";".join(
        f"sentinel://{prefix}{f'[{host}]' if ':' in host else host}:{port}/{database}"
        for host, port in settings.sentinels
    )


UNACKED = redis_transport.Channel.unacked_key
"""kombu's hash of the messages workers took and have not acknowledged (tag -> message)."""
UNACKED_INDEX = redis_transport.Channel.unacked_index_key
"""kombu's sorted set of those messages' tags by the time they were taken (Unix s)."""


@dataclass(frozen=True)
class QueueMessage:
    """A queue entry that runs a job, built before anything is written: it goes to Redis in
    the same step as the job's state (`JobStore`), so that no job is queued without its message
    nor the other way round.

    `raw` is what LPUSH pushes onto `QUEUE`; `tag` is its kombu delivery tag, which names it in
    the queue and among the unacknowledged messages (`UNACKED`) while a worker holds it.
    """

    tag: str
    raw: str


class Publisher:
    """Builds the queue entries that run jobs, for the API and for the workers (a job whose
    worker was lost, or whose message was, goes back to the queue with a new one).

    What it builds is what `Celery.send_task` pushes for the task: Celery builds the message
    (`amqp.as_task_v2`, protocol 2, JSON), in the envelope of kombu's Redis transport, and the
    job store pushes it onto the queue's list with one LPUSH in the script that writes the job.
    `send_task` is blocking (a thread per call in the API) and cost ~430 us of CPU each (kombu's
    producer pool, connection checks, publish path); this ~35. A test holds the two messages
    equal.
    """

    def __init__(self, celery: Celery) -> None:
        self._amqp = celery.amqp
        self._reply_to = celery.thread_oid

    def entry(self, job_id: str) -> QueueMessage:
        """A new queue entry that runs INVESTIGATE for `job_id` (a new task id and tag)."""
        task_id = str(uuid.uuid4())
        task = self._amqp.as_task_v2(
            task_id,
            INVESTIGATE,
            args=[job_id],
            reply_to=self._reply_to,
            root_id=task_id,
            ignore_result=None,
            argsrepr=repr([job_id]),
            kwargsrepr="{}",
        )
        body = json.dumps(task.body).encode()
        tag = str(uuid.uuid4())
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": task.headers,
            "properties": {
                **task.properties,
                "delivery_mode": 2,  # persistent
                "delivery_info": {"exchange": "", "routing_key": QUEUE},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": tag,
            },
        }
        return QueueMessage(tag=tag, raw=json.dumps(envelope))

    def message(self, job_id: str) -> str:
        """The queue entry that runs INVESTIGATE for `job_id`, as JSON."""
        return self.entry(job_id).raw
