"""Real servers in child processes: redis-server, PersAI's API, workers, small stand-ins.

Every child runs in its own session with its log in the run's directory, and is stopped
(SIGTERM, then SIGKILL) when the benchmark ends, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, cast

import httpx
import redis

from persai.jobs import keys
from persai.launcher import Child, MissingBinary, free_port, start_redis, wait_until


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM in /proc/<pid>/status), in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def rss_mib(pid: int) -> float:
    """The process's resident memory now (VmRSS), in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def threads(pid: int) -> int:
    return _status_kib(pid, "Threads")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


class Cluster:
    """The run's servers: a directory for their data and logs, and everything to stop at the end.

    with Cluster(keep_logs=False) as cluster:
        redis_url = cluster.redis()
        api = cluster.api(env)
    """

    def __init__(self, *, keep_logs: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="persai-bench-"))
        self.keep_logs = keep_logs
        self.children: list[Child] = []
        self.redis_url = ""

    def __enter__(self) -> Self:
        # SIGTERM ends the run like Ctrl-C: through __exit__, so that no server is left behind.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.keep_logs or exc is not None:
            print(f"  # logs kept in {self.directory}", flush=True)
        else:
            shutil.rmtree(self.directory, ignore_errors=True)

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None, *, port: int = 0
    ) -> Child:
        env = {"PYTHONUNBUFFERED": "1", **(env or {})}
        log_path = self.directory / f"{name}.log"
        child = Child.spawn(name, argv, env=env, log_path=log_path, port=port)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        self.children.remove(child)

    def redis(self) -> str:
        """A `redis-server` as production runs it (AOF on, fsync every second, noeviction)."""
        try:
            child = start_redis(self.directory / "redis", max_clients=20_000)
        except MissingBinary as exc:
            raise SystemExit(str(exc)) from exc
        self.children.append(child)
        self.redis_url = f"redis://127.0.0.1:{child.port}/0"
        return self.redis_url

    def api(self, env: Mapping[str, str], name: str = "api") -> Child:
        """PersAI's API (`persai api`, uvicorn) with this environment; waits for /healthz."""
        port = free_port()
        argv = [sys.executable, "-m", "persai.cli", "api", "--port", str(port)]
        child = self.start(name, argv, env, port=port).wait_listening(60)
        _wait(lambda: httpx.get(f"{child.url}/healthz").status_code == 200, 30, "API not healthy")
        return child

    def module(
        self, name: str, module: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> Child:
        """`python -m module args...` (a bench stand-in or worker)."""
        return self.start(name, [sys.executable, "-m", module, *args], env)

    def server_module(
        self, name: str, module: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> Child:
        """`python -m module --port N args...`, waited for until it listens."""
        port = free_port()
        argv = [sys.executable, "-m", module, "--port", str(port), *args]
        return self.start(name, argv, env, port=port).wait_listening(60)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def wait_for_workers(redis_url: str, children: list[Child], timeout_s: float = 60.0) -> None:
    """Until every one of these PersAI workers has written its heartbeat."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pids = {str(child.pid) for child in children}

    def ready() -> bool:
        for child in children:
            child.check_alive()
        workers = cast(list[str], client.hkeys(keys.WORKERS))
        seen = {worker.rsplit(":", 1)[1] for worker in workers}
        return pids <= seen

    try:
        _wait(ready, timeout_s, "workers did not start")
    finally:
        client.close()


def _wait(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    def holds() -> bool:
        with contextlib.suppress(httpx.HTTPError, redis.RedisError):
            return condition()
        return False

    wait_until(holds, timeout_s, message)


@contextlib.contextmanager
def more_open_files(wanted: int) -> Iterator[None]:
    """Raise this process's (and its children's) open-file limit towards `wanted`."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each child (and this process) used between `start()` and `stop()`."""

    def __init__(self, children: list[Child]) -> None:
        self._pids = {child.name: child.pid for child in children} | {"driver": os.getpid()}
        self._before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self) -> dict[str, float]:
        self.used = {
            name: cpu_seconds(pid) - self._before[name] for name, pid in self._pids.items()
        }
        return self.used

    def summary(self, wall_s: float) -> str:
        parts = [f"{name} {used:.1f} s" for name, used in self.used.items()]
        return f"{', '.join(parts)} (wall {wall_s:.1f} s, {os.cpu_count()} cores)"
