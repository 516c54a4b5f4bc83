"""A Redis master, its replica (both with AOF) and three Sentinels, on free loopback ports.

    with SentinelCluster(tmp_path) as cluster:
        env = {"PERSAI_REDIS_SENTINELS": cluster.sentinels_setting, ...}
        cluster.kill_master()            # SIGKILL
        cluster.wait_for_new_master()    # the replica, promoted by the Sentinels

Missing `redis-server`/`redis-sentinel` binaries skip the test, except under `CI=true`, where
they fail it. The Sentinels judge the master down after `DOWN_AFTER_MS` without an answer.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import pytest
import redis

from tests.support.ports import free_port, wait_for_port
from tests.support.redis import require_redis_server

MASTER_NAME = "persai"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
INSTALL_HINT = "install it with `apt-get install redis-sentinel` (Debian/Ubuntu)"


def require_redis_sentinel() -> str:
    """The path of `redis-sentinel`; skips the test when missing (fails under CI=true)."""
    found = shutil.which("redis-sentinel")
    if found:
        return found
    message = f"redis-sentinel not found on PATH: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class SentinelCluster:
    def __init__(self, data_dir: Path, sentinels: int = 3) -> None:
        self.server = require_redis_server()
        self.sentinel = require_redis_sentinel()
        self.data_dir = data_dir
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def sentinels_setting(self) -> str:
        """PERSAI_REDIS_SENTINELS for this cluster."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def __enter__(self) -> SentinelCluster:
        try:
            self._redis("master", self.master_port)
            self._redis(
                "replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port)
            )
            self._wait_replicated()
            for number, port in enumerate(self.sentinel_ports):
                self._sentinel(number, port)
            self.wait_for_master(self.master_port)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self, name: str, argv: list[str], port: int) -> None:
        with (self.data_dir / f"{name}.log").open("ab") as log:
            self._processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(port, 15.0)

    def _redis(self, name: str, port: int, *extra: str) -> None:
        directory = self.data_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        argv = [
            self.server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory-policy", "noeviction", "--maxclients", "10000", *extra,
        ]  # fmt: skip
        self._start(name, argv, port)

    def _sentinel(self, number: int, port: int) -> None:
        config = self.data_dir / f"sentinel-{number}.conf"  # a Sentinel rewrites its own
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.data_dir}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self._start(f"sentinel-{number}", [self.sentinel, str(config)], port)

    def _wait_replicated(self, timeout_s: float = 15.0) -> None:
        replica = redis.Redis(port=self.replica_port, decode_responses=True)
        deadline = time.monotonic() + timeout_s
        while replica.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync with the master"
            time.sleep(0.05)
        replica.close()

    def wait_for_master(self, port: int, timeout_s: float = 30.0) -> None:
        """Until every Sentinel names the master on `port` and knows the other Sentinels."""
        deadline = time.monotonic() + timeout_s
        while not self._all_agree(port):
            assert time.monotonic() < deadline, f"the Sentinels do not name port {port} master"
            time.sleep(0.1)

    def _all_agree(self, port: int) -> bool:
        for sentinel_port in self.sentinel_ports:
            try:
                client = redis.Redis(port=sentinel_port, decode_responses=True, socket_timeout=1.0)
                state = cast(dict[str, Any], client.sentinel_master(MASTER_NAME))
                client.close()
            except redis.RedisError:
                return False
            if int(state["port"]) != port or int(state["num-other-sentinels"]) < 2:
                return False
        return True

    def kill_master(self) -> None:
        """SIGKILL the master: nothing it had not replicated survives it."""
        process = self._processes.pop("master")
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def wait_for_new_master(self, timeout_s: float = 60.0) -> None:
        """Until the Sentinels promoted the replica (and it accepts writes)."""
        self.wait_for_master(self.replica_port, timeout_s)
        client = redis.Redis(port=self.replica_port, decode_responses=True)
        deadline = time.monotonic() + timeout_s
        while client.info("replication")["role"] != "master":
            assert time.monotonic() < deadline, "the replica was not promoted"
            time.sleep(0.05)
        client.close()

    def log(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
