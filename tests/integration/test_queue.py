"""The Celery app's Redis transport and the API's publisher, against a real redis-server."""

import base64
import json
from collections.abc import Iterator
from typing import Any

import kombu
import pytest
import redis

from persai import queue
from persai.config import Settings
from persai.jobs import Job, JobStore
from persai.queue import INVESTIGATE, QUEUE, Publisher, create_celery
from persai.redis_client import connect
from tests.support.redis import RedisServer


def test_messages_published_survive_a_redis_restart(redis_server: RedisServer) -> None:
    app = create_celery(Settings(), redis_server.url)
    peek = redis.Redis.from_url(redis_server.url)
    try:
        for job_id in ("a", "b", "c"):
            app.send_task(INVESTIGATE, args=[job_id])
        queued = [json.loads(m) for m in peek.lrange(QUEUE, 0, -1)]
        assert [m["headers"]["task"] for m in queued] == [INVESTIGATE] * 3
        assert sorted(m["headers"]["argsrepr"] for m in queued) == ["['a']", "['b']", "['c']"]

        redis_server.stop()
        redis_server.start()  # AOF on: what was queued is still there
        app.send_task(INVESTIGATE, args=["d"])
        assert peek.llen(QUEUE) == 4
    finally:
        peek.close()
        app.close()


@pytest.mark.anyio
async def test_the_job_store_pushes_what_send_task_pushes(redis_server: RedisServer) -> None:
    app = create_celery(Settings(), redis_server.url)
    client = connect(redis_server.url, patience_s=1.0, max_connections=4)
    peek = redis.Redis.from_url(redis_server.url)
    try:
        app.send_task(INVESTIGATE, args=["job-1"])
        job = Job(id="job-1", owner="alice", question="q", datasource="/d", conversation_id="c")
        message = Publisher(app).entry(job.id)
        await JobStore(client, retention_s=60).create(job, None, 60, message)
        ours, celerys = (json.loads(m) for m in peek.lrange(QUEUE, 0, -1))  # LPUSH: newest first
        assert ours["properties"]["delivery_tag"] == message.tag  # what names it in the sweep

        ids = ("id", "root_id", "origin")
        for message in (ours, celerys):
            assert message["headers"]["root_id"] == message["headers"]["id"]
            assert message["properties"]["correlation_id"] == message["headers"]["id"]
            for name in ("correlation_id", "delivery_tag", "reply_to"):
                assert message["properties"].pop(name)
            for name in ids:
                assert message["headers"].pop(name)
        assert ours == celerys
        assert base64.b64decode(ours["body"]) == base64.b64decode(celerys["body"])
    finally:
        peek.close()
        await client.aclose()
        app.close()


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[tuple[Any, redis.Redis]]:
    """A Celery app on `redis_server`, and a plain client to look at what the queue holds."""
    app = create_celery(Settings(), redis_server.url)
    peek = redis.Redis.from_url(redis_server.url)
    yield app, peek
    peek.close()
    app.close()


def _queue_at_once(app: Any, peek: redis.Redis, count: int) -> list[str]:
    """`count` messages pushed in one command, as a burst of submissions leaves them."""
    publisher = Publisher(app)
    jobs = [f"job-{n}" for n in range(count)]
    peek.lpush(QUEUE, *[publisher.message(job) for job in jobs])  # the first one is oldest
    return jobs


def _consumer(connection: Any, prefetch: int, on_message: Any) -> kombu.Consumer:
    channel = connection.default_channel
    channel.basic_qos(0, prefetch, False)
    consumer = kombu.Consumer(
        channel, queues=[kombu.Queue(QUEUE)], callbacks=[on_message], accept=["json"]
    )
    consumer.consume()
    return consumer


def _job(message: Any) -> str:
    args, _, _ = message.decode()
    return str(args[0])


def test_what_a_consumer_holds_is_where_the_sweep_looks_for_it(
    broker: tuple[Any, redis.Redis],
) -> None:
    """The sweep (`persai.jobs.sweep`) finds the messages workers hold in kombu's hash and
    sorted set of unacknowledged messages: their names and layout are kombu's internals, so
    this fails loudly when a kombu release changes them."""
    app, peek = broker
    assert (queue.UNACKED, queue.UNACKED_INDEX) == ("unacked", "unacked_index")
    jobs = _queue_at_once(app, peek, 30)
    received: list[Any] = []
    with app.connection_for_read() as connection:
        _consumer(connection, 20, lambda _, message: received.append(message))
        while len(received) < 20:
            connection.drain_events(timeout=5)
        assert [_job(m) for m in received] == jobs[:20]  # in order, no more than allowed
        assert peek.llen(QUEUE) == 10
        unacked = peek.hgetall(queue.UNACKED)
        assert sorted(unacked) == sorted(m.delivery_tag.encode() for m in received)
        for message in received:
            held, exchange, routing_key = json.loads(unacked[message.delivery_tag.encode()])
            assert held == json.loads(json.dumps(message._raw))
            assert (exchange, routing_key) == ("", QUEUE)
        assert peek.zcard(queue.UNACKED_INDEX) == 20

        for message in received[:5]:
            message.ack()
        assert peek.hlen(queue.UNACKED) == 15
        assert peek.zcard(queue.UNACKED_INDEX) == 15
        connection.default_channel.qos.restore_unacked()  # what a warm shutdown does
    assert peek.hlen(queue.UNACKED) == 0
    # the 15 unacknowledged back in the queue, beside the 10 never taken: none lost, none twice
    assert sorted(_job_of(m) for m in peek.lrange(QUEUE, 0, -1)) == sorted(jobs[5:])


def _job_of(raw: bytes) -> str:
    """The job of a queued message, or of a [message, exchange, routing key] record."""
    message = json.loads(raw)
    if isinstance(message, list):
        message = message[0]
    body = json.loads(base64.b64decode(message["body"]))
    return str(body[0][0])
