"""The Celery app's Redis transport, against a real redis-server."""

import json
from typing import Any

import pytest
import redis

from persai import queue
from persai.config import Settings
from persai.queue import INVESTIGATE, QUEUE, create_celery
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
