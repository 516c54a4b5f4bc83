"""Child processes, free loopback ports, and binaries that may be missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

LOOPBACK = "127.0.0.1"


class MissingBinary(RuntimeError):
    """A program to start is not installed; the message says what to install."""


def which(binary: str, hint: str) -> str:
    """The path of `binary` on PATH; MissingBinary saying `hint` (how to install it) if none."""
    found = shutil.which(binary)
    if found is None:
        raise MissingBinary(f"{binary} not found on PATH: {hint}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    message: str,
    *,
    child: Child | None = None,
    interval_s: float = 0.05,
) -> None:
    """Until `condition()` is true (connection errors count as false); TimeoutError saying
    `message` otherwise, or RuntimeError with its log's tail as soon as `child` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child is not None:
            child.check_alive()
        with contextlib.suppress(OSError):
            if condition():
                return
        time.sleep(interval_s)
    note = child.log_note() if child is not None else ""
    raise TimeoutError(f"{message} after {timeout_s:.0f} s{note}")


def wait_for_port(port: int, timeout_s: float = 30.0, child: Child | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:port."""

    def listening() -> bool:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True

    wait_until(listening, timeout_s, f"nothing listens on {LOOPBACK}:{port}", child=child)


@dataclass
class Child:
    """A child process in a session of its own, its log file, and a clean stop (SIGTERM to
    its process group, then SIGKILL): it takes whatever it started along."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    port: int = 0

    @classmethod
    def spawn(
        cls,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        port: int = 0,
    ) -> Child:
        """Start `argv` with this environment plus `env`; output appended to `log_path`
        (inherited when None)."""
        with contextlib.ExitStack() as files:
            out = files.enter_context(log_path.open("ab")) if log_path else None
            process = subprocess.Popen(
                argv,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        return cls(name, process, log_path, port)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def wait_listening(self, timeout_s: float = 60.0) -> Self:
        """Until it listens on its port (RuntimeError with its log if it exits first)."""
        wait_for_port(self.port, timeout_s, self)
        return self

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}{self.log_note()}"
            )

    def tail(self, lines: int = 40) -> str:
        """The end of its log."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    log_tail = tail

    def log_note(self) -> str:
        """Where its log is and how it ends, for an error message."""
        if self.log_path is None:
            return ""
        return f"; last lines of {self.log_path}:\n{self.tail()}"

    def signal(self, signum: int) -> None:
        """Send `signum` to its process group, if it still runs."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; safe to call twice."""
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def stop_if_unready(child: Child, ready: Callable[[], None]) -> Child:
    """Run `ready` (which waits for the child); stop the child if it raises (or this process
    is stopped meanwhile): nobody else knows it was started."""
    try:
        ready()
    except BaseException:
        child.stop()
        raise
    return child
