"""A real `redis-server` on a free loopback port, with AOF persistence, restartable in place."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.support.ports import free_port, wait_for_port

INSTALL_HINT = "install it with `apt-get install redis-server` (Debian/Ubuntu)"


def require_redis_server() -> str:
    """The path of `redis-server`; skips the test when missing (fails under CI=true)."""
    found = shutil.which("redis-server")
    if found:
        return found
    message = f"redis-server not found on PATH: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class RedisServer:
    """`redis-server` as production runs it (AOF on, noeviction), on 127.0.0.1:port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.binary = require_redis_server()
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--maxmemory-policy", "noeviction", "--maxclients", "10000",
        ]  # fmt: skip
        with (self.data_dir / "server.log").open("ab") as log:
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 15.0)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 15
        while True:  # listening is not loaded: wait until the AOF is read back
            try:
                client.ping()
                break
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)
