"""A Redis master, its replica (both with AOF) and three Sentinels, on free loopback ports.

    with SentinelCluster(tmp_path) as cluster:
        env = {"PERSAI_REDIS_SENTINELS": cluster.sentinels_setting, ...}
        cluster.kill_master()            # SIGKILL
        cluster.wait_for_new_master()    # the replica, promoted by the Sentinels

Missing `redis-server`/`redis-sentinel` binaries skip the test, except under `CI=true`, where
they fail it. The Sentinels judge the master down after `DOWN_AFTER_MS` without an answer.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis

from persai.launcher import Child, free_port, wait_until
from tests.support.redis import require_redis_server
from tests.support.require import require

MASTER_NAME = "persai"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
INSTALL_HINT = "install it with `apt-get install redis-sentinel` (Debian/Ubuntu)"


def require_redis_sentinel() -> str:
    """The path of `redis-sentinel`; skips the test when missing (fails under CI=true)."""
    return require("redis-sentinel", INSTALL_HINT)


class SentinelCluster:
    def __init__(self, data_dir: Path, sentinels: int = 3) -> None:
        self.server = require_redis_server()
        self.sentinel = require_redis_sentinel()
        self.data_dir = data_dir
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self._children: dict[str, Child] = {}

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
        log_path = self.data_dir / f"{name}.log"
        child = Child.spawn(name, argv, log_path=log_path, port=port)
        self._children[name] = child  # stopped by stop() even if it never listens
        child.wait_listening(15.0)

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
        try:
            wait_until(
                lambda: replica.info("replication").get("master_link_status") == "up",
                timeout_s,
                "the replica did not sync with the master",
                child=self._children["replica"],
            )
        finally:
            replica.close()

    def wait_for_master(self, port: int, timeout_s: float = 30.0) -> None:
        """Until every Sentinel names the master on `port` and knows the other Sentinels."""
        wait_until(
            lambda: self._all_agree(port),
            timeout_s,
            f"the Sentinels do not name port {port} master",
            interval_s=0.1,
        )

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
        master = self._children.pop("master")
        master.signal(signal.SIGKILL)
        master.process.wait(10)

    def wait_for_new_master(self, timeout_s: float = 60.0) -> None:
        """Until the Sentinels promoted the replica (and it accepts writes)."""
        self.wait_for_master(self.replica_port, timeout_s)
        client = redis.Redis(port=self.replica_port, decode_responses=True)
        try:
            wait_until(
                lambda: client.info("replication")["role"] == "master",
                timeout_s,
                "the replica was not promoted",
            )
        finally:
            client.close()

    def log(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for child in self._children.values():
            child.signal(signal.SIGTERM)  # all at once, then each waited for (SIGKILL late)
        for child in self._children.values():
            child.stop()
        self._children.clear()
