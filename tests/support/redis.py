"""A real `redis-server` on a free loopback port, with AOF persistence, restartable in place."""

from __future__ import annotations

from pathlib import Path

import redis

from persai.launcher import Child, free_port, start_redis
from persai.launcher.servers import REDIS_HINT
from tests.support.require import require

INSTALL_HINT = REDIS_HINT


def require_redis_server() -> str:
    """The path of `redis-server`; skips the test when missing (fails under CI=true)."""
    return require("redis-server", INSTALL_HINT)


class RedisServer:
    """`redis-server` as production runs it (AOF on, noeviction), on 127.0.0.1:port; every
    write is fsynced, so that what a test counts after a kill is what was acknowledged."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.binary = require_redis_server()
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._child: Child | None = None

    def start(self) -> RedisServer:
        self._child = start_redis(self.data_dir, self.port, fsync="always", binary=self.binary)
        return self

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()
        self._child = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)
