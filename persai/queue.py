"""The Celery side both the API and the workers share: one broker configuration, one task name.

The message carries the job id only; everything else is in the job record.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.asyncio as aioredis
from celery import Celery
from kombu.transport import redis as redis_transport

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
        broker_transport=f"{__name__}:Transport",
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


class _Channel(redis_transport.Channel):
    """kombu's Redis channel, with one client for its commands instead of one per command.

    kombu builds a new redis-py client (~80 us of CPU: its reply-callback table) for every
    publish, binding lookup and acknowledgement; the client only borrows connections from the
    channel's pool, and is safe to share between threads. A new pool (after a lost connection)
    gets a new client.
    """

    _shared: tuple[Any, Any] | None = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        if self._shared is None or self._shared[0] is not pool:
            self._shared = (pool, self._create_client())  # type: ignore[no-untyped-call]
        yield self._shared[1]


class Transport(redis_transport.Transport):
    """kombu's Redis transport with `_Channel` (set as `broker_transport`)."""

    Channel = _Channel


class Publisher:
    """Queues job ids for the workers through an asyncio Redis client (the API's, and a
    worker's when it queues again a job whose worker was lost).

    What it pushes is what `Celery.send_task` pushes for the task: Celery builds the message
    (`amqp.as_task_v2`, protocol 2, JSON), and it goes to the queue's list in the envelope of
    kombu's Redis transport, as one LPUSH that the self-pipelining client sends with the other
    commands of the moment. `send_task` is blocking (a thread per call in the API) and cost
    ~430 us of CPU each (kombu's producer pool, connection checks, publish path); this ~35.
    A test holds the two messages equal.
    """

    def __init__(self, celery: Celery, redis: aioredis.Redis) -> None:
        self._amqp = celery.amqp
        self._reply_to = celery.thread_oid
        self._redis = redis

    def message(self, job_id: str) -> str:
        """The queue entry that runs INVESTIGATE for `job_id`, as JSON."""
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
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return json.dumps(envelope)

    async def send(self, job_id: str) -> None:
        """Queue `job_id` (raises the client's errors when Redis is unreachable)."""
        await self._redis.lpush(QUEUE, self.message(job_id))
