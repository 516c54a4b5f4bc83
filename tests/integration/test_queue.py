"""The Celery app's Redis transport and the API's publisher, against a real redis-server."""

import base64
import json
from typing import Any

import pytest
import redis

from persai import queue
from persai.config import Settings
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
async def test_the_publisher_pushes_what_send_task_pushes(redis_server: RedisServer) -> None:
    app = create_celery(Settings(), redis_server.url)
    client = connect(redis_server.url, patience_s=1.0, max_connections=4)
    peek = redis.Redis.from_url(redis_server.url)
    try:
        app.send_task(INVESTIGATE, args=["job-1"])
        await Publisher(app, client).send("job-1")
        ours, celerys = (json.loads(m) for m in peek.lrange(QUEUE, 0, -1))  # LPUSH: newest first

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
