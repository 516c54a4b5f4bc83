"""The Celery app's Redis transport and the API's publisher, against a real redis-server."""

import base64
import json
from collections.abc import Iterator
from typing import Any

import kombu
import pytest
import redis
from kombu.transport import redis as redis_transport

from persai import queue
from persai.config import Settings
from persai.jobs import Job, JobStore
from persai.queue import INVESTIGATE, QUEUE, Publisher, create_celery
from persai.redis_client import connect
from tests.support.redis import RedisServer


def test_messages_are_published_through_one_client_that_survives_a_redis_restart(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[bool] = []
    create = queue._Channel._create_client

    def counted(channel: Any, asynchronous: bool = False) -> Any:
        created.append(asynchronous)
        return create(channel, asynchronous)

    monkeypatch.setattr(queue._Channel, "_create_client", counted)
    app = create_celery(Settings(), redis_server.url)
    peek = redis.Redis.from_url(redis_server.url)
    try:
        for job_id in ("a", "b", "c"):
            app.send_task(INVESTIGATE, args=[job_id])
        # one client for the channel's commands (a binding lookup and a push per message), and
        # kombu's own for blocking reads
        assert created.count(False) == 1
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


def test_a_consumer_takes_what_is_waiting_at_once_up_to_its_prefetch_limit(
    broker: tuple[Any, redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, peek = broker
    jobs = _queue_at_once(app, peek, 30)
    received: list[Any] = []
    # kombu's own record (a round trip per message): only for what each BRPOP itself brought
    recorded_by_kombu: list[str] = []
    kombu_append = redis_transport.QoS.append

    def counted(qos: Any, message: Any, delivery_tag: str) -> None:
        recorded_by_kombu.append(delivery_tag)
        kombu_append(qos, message, delivery_tag)

    monkeypatch.setattr(redis_transport.QoS, "append", counted)
    with app.connection_for_read() as connection:
        _consumer(connection, 20, lambda _, message: received.append(message))
        connection.drain_events(timeout=5)  # one BRPOP reply: plain kombu delivers one
        assert [_job(m) for m in received] == jobs[:20]  # in order, no more than allowed
        assert peek.llen(QUEUE) == 10
        # each is recorded as kombu records what it holds: restorable if the worker dies
        unacked = peek.hgetall("unacked")
        assert sorted(unacked) == sorted(m.delivery_tag.encode() for m in received)
        for message in received:
            held, exchange, routing_key = json.loads(unacked[message.delivery_tag.encode()])
            assert held == json.loads(json.dumps(message._raw))
            assert (exchange, routing_key) == ("", QUEUE)
        assert peek.zcard("unacked_index") == 20

        for message in received[:5]:
            message.ack()
        assert peek.hlen("unacked") == 15
        assert peek.zcard("unacked_index") == 15
        connection.drain_events(timeout=5)  # room for 5 more: the next 5, in order
        assert [_job(m) for m in received] == jobs[:25]
        assert recorded_by_kombu == [received[0].delivery_tag, received[20].delivery_tag]

        connection.default_channel.qos.restore_unacked()  # what a warm shutdown does
    assert peek.hlen("unacked") == 0
    # the 20 unacknowledged back in the queue, beside the 5 never taken: none lost, none twice
    assert sorted(_job_of(m) for m in peek.lrange(QUEUE, 0, -1)) == sorted(jobs[5:])


def test_messages_taken_but_not_handed_over_go_back_to_the_head_of_the_queue(
    broker: tuple[Any, redis.Redis],
) -> None:
    app, peek = broker
    jobs = _queue_at_once(app, peek, 10)
    received: list[str] = []

    def on_message(_: Any, message: Any) -> None:
        if _job(message) == "job-3":
            raise RuntimeError("the consumer broke")
        received.append(_job(message))
        message.ack()

    def waiting() -> list[str]:
        return [_job_of(m) for m in reversed(peek.lrange(QUEUE, 0, -1))]  # next in line first

    with app.connection_for_read() as connection:
        _consumer(connection, 100, on_message)
        with pytest.raises(RuntimeError):
            connection.drain_events(timeout=5)
        assert received == jobs[:3]
        assert waiting() == jobs[4:]
        # job-3 reached the consumer: kombu holds it, unacknowledged, until it closes
        assert [_job_of(m) for m in peek.hvals("unacked")] == ["job-3"]
    assert waiting() == jobs[3:]
    assert peek.hlen("unacked") == 0


def _job_of(raw: bytes) -> str:
    """The job of a queued message, or of a [message, exchange, routing key] record."""
    message = json.loads(raw)
    if isinstance(message, list):
        message = message[0]
    body = json.loads(base64.b64decode(message["body"]))
    return str(body[0][0])


def test_a_redis_that_cannot_run_the_take_is_read_one_message_at_a_time(
    broker: tuple[Any, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # as a Redis older than 6.2 answers RPOP with a count
    monkeypatch.setattr(queue, "_TAKE_WAITING", "return redis.error_reply('ERR wrong number')")
    app, peek = broker
    jobs = _queue_at_once(app, peek, 3)
    received: list[str] = []

    def on_message(_: Any, message: Any) -> None:
        received.append(_job(message))
        message.ack()

    with app.connection_for_read() as connection:
        _consumer(connection, 100, on_message)
        for count in (1, 2, 3):
            connection.drain_events(timeout=5)
            assert received == jobs[:count]  # kombu's own way: one per BRPOP
    assert "messages are taken one at a time" in caplog.text
    assert peek.llen(QUEUE) == 0
    assert peek.hlen("unacked") == 0
