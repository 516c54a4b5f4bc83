"""The Celery side both the API and the workers share: one broker configuration, one task name.

The message carries the job id only; everything else is in the job record.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.transport import redis as redis_transport
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from persai.config import Settings

log = logging.getLogger(__name__)

INVESTIGATE = "persai.investigate"
QUEUE = "persai"
TAKE_AT_ONCE = 100
"""At most this many waiting messages are taken in one round trip after a BRPOP."""

_TAKE_WAITING = """
local limit, taken = tonumber(ARGV[1]), {}
for list = 3, #KEYS do
  if limit <= 0 then
    break
  end
  local raws = redis.call('RPOP', KEYS[list], limit)
  for _, raw in ipairs(raws or {}) do
    local properties = cjson.decode(raw)['properties']
    local tag, info = properties['delivery_tag'], properties['delivery_info']
    redis.call('ZADD', KEYS[2], ARGV[2], tag)
    redis.call('HSET', KEYS[1], tag, '[' .. raw .. ',' .. cjson.encode(info['exchange'])
      .. ',' .. cjson.encode(info['routing_key']) .. ']')
    taken[#taken + 1] = {list - 2, raw}
  end
  limit = limit - #(raws or {})
end
return taken
"""
"""Pop up to ARGV[1] messages from the lists KEYS[3...], in that order, and record each as
unacknowledged as kombu's QoS.append does (KEYS[1]: tag -> [message, exchange, routing key];
KEYS[2]: tag -> time taken), in one step: a worker that dies at any point leaves each message
either in its queue or where kombu restores unacknowledged messages from. Returns
[[list number (1...), message], ...]."""


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


class _QoS(redis_transport.QoS):
    """kombu's acknowledgement emulation, skipping the record of messages that the channel
    took with `_TAKE_WAITING` (already recorded, in the same step that took them)."""

    def append(self, message: Any, delivery_tag: str) -> None:
        recorded: set[str] = self.channel.recorded
        if delivery_tag in recorded:
            recorded.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]
        else:
            super().append(message, delivery_tag)  # type: ignore[no-untyped-call]


class _Channel(redis_transport.Channel):
    """kombu's Redis channel, with one client for its commands instead of one per command,
    and the messages waiting in a queue taken many at a time.

    kombu builds a new redis-py client (~80 us of CPU: its reply-callback table) for every
    publish, binding lookup and acknowledgement; the client only borrows connections from the
    channel's pool, and is safe to share between threads. A new pool (after a lost connection)
    gets a new client.

    kombu takes one message per BRPOP, then records it as unacknowledged in a second round
    trip, then registers the BRPOP again with the event loop: when 500 investigations are
    queued at once, the worker's consumer spent ~1.2 ms of CPU on each before it was handed to
    the pool, and it shares the process's one GIL with the event loop that runs them. After
    each BRPOP this channel takes what else is waiting, up to the prefetch limit, with one
    script (`_TAKE_WAITING`), and delivers it at once.
    """

    QoS = _QoS
    _shared: tuple[Any, Any] | None = None
    _take_script: Any = None
    _take_works = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.recorded: set[str] = set()
        """Delivery tags that `_TAKE_WAITING` recorded as unacknowledged, not yet delivered."""
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

    def _brpop_read(self, **options: Any) -> bool:
        """One message by BRPOP (kombu's; raises Empty when none came), then what else waits."""
        delivered: bool = super()._brpop_read(**options)  # type: ignore[no-untyped-call]
        self._take_waiting()
        return delivered

    def _take_waiting(self) -> None:
        room = self.qos.can_consume_max_estimate()  # None: no prefetch limit
        limit = TAKE_AT_ONCE if room is None else min(room, TAKE_AT_ONCE)
        if limit <= 0 or not self._take_works or self.global_keyprefix:
            return
        # the lists in the order BRPOP reads them: by priority, then by queue
        queues = sorted(self.active_queues)
        lists = [
            (self._q_for_pri(queue, priority), queue)  # type: ignore[no-untyped-call]
            for priority in self.priority_steps
            for queue in queues
        ]
        with self.conn_or_acquire() as client:
            if self._take_script is None:
                self._take_script = client.register_script(_TAKE_WAITING)
            try:
                taken = self._take_script(
                    keys=[self.unacked_key, self.unacked_index_key, *(key for key, _ in lists)],
                    args=[limit, time.time()],
                    client=client,
                )
            except ResponseError as exc:  # e.g. a Redis older than 6.2 (RPOP's count)
                log.warning("messages are taken one at a time: %s", exc)
                self._take_works = False
                return
            except (ConnectionError, TimeoutError):
                return  # the next BRPOP meets the same error, and kombu reconnects
        self._deliver_taken([(lists[number - 1][1], raw) for number, raw in taken])

    def _deliver_taken(self, taken: list[tuple[str, bytes]]) -> None:
        messages = [
            (queue, loads(bytes_to_str(raw)))  # type: ignore[no-untyped-call]
            for queue, raw in taken
        ]
        self.recorded.update(message["properties"]["delivery_tag"] for _, message in messages)
        for index, (queue, message) in enumerate(messages):
            try:
                self.connection._deliver(message, queue)
            except BaseException:
                # the rest back to the head of their queues, in their order, as kombu restores
                # the messages it holds
                for _, rest in reversed(messages[index + 1 :]):
                    tag = rest["properties"]["delivery_tag"]
                    self.recorded.discard(tag)
                    self.qos.restore_by_tag(tag)
                raise

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
