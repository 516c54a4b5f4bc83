"""PersAI's own processes for integration tests: the API and workers, as `persai` runs them."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from persai.launcher import Child, free_port, wait_for_port

MODEL = "llm/scripted"
"""The scripted model, as the shared Llama Stack serves it."""


class PersAIProcess:
    """`persai api` or `persai worker` in a subprocess, logging to a file."""

    def __init__(self, kind: str, env: Mapping[str, str], log_path: Path, *args: str) -> None:
        self.kind = kind
        self.log_path = log_path
        self.port = free_port() if kind == "api" else None
        argv = [sys.executable, "-m", "persai.cli", kind, *args]
        if self.port is not None:
            argv += ["--port", str(self.port)]
        self.child = Child.spawn(
            f"persai {kind}", argv, env={"PYTHONUNBUFFERED": "1", **env}, log_path=log_path
        )
        self.process = self.child.process

    @property
    def url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30.0) -> PersAIProcess:
        if self.port is not None:
            try:
                wait_for_port(self.port, timeout_s)
            except TimeoutError as exc:
                raise RuntimeError(f"persai {self.kind} did not start:\n{self.log()}") from exc
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, signum: signal.Signals) -> None:
        self.child.signal(signum)

    def stop(self, timeout_s: float = 20.0) -> None:
        self.child.stop(timeout_s)


def wait_for_worker(api_url: str, timeout_s: float = 30.0) -> None:
    """Until /readyz sees a worker heartbeat."""
    deadline = time.monotonic() + timeout_s
    body: object = None
    while time.monotonic() < deadline:
        body = httpx.get(f"{api_url}/readyz", timeout=5).json()
        assert isinstance(body, dict)
        if body["checks"].get("worker", {}).get("ok"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no worker became ready: {body}")


def wait_for_job(
    client: httpx.Client, job_id: str, timeout_s: float = 60.0, *, until: tuple[str, ...] = ()
) -> dict[str, object]:
    """Poll the job until it is finished (or in one of `until`); returns its record."""
    wanted = until or ("succeeded", "failed", "cancelled")
    deadline = time.monotonic() + timeout_s
    record: dict[str, object] = {}
    while time.monotonic() < deadline:
        record = client.get(f"/api/v1/investigations/{job_id}").json()
        if record.get("status") in wanted:
            return record
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {record.get('status')} after {timeout_s} s: {record}")


@dataclass
class PersAIStack:
    """PersAI's API and workers over the shared servers; stopped at the end of the test."""

    env: dict[str, str]
    directory: Path
    api: PersAIProcess | None = None
    workers: list[PersAIProcess] = field(default_factory=list)

    def start_api(self) -> PersAIProcess:
        self.api = PersAIProcess("api", self.env, self.directory / "api.log")
        return self.api.wait_ready()  # stopped by stop() even when it never becomes ready

    def start_worker(self, *args: str) -> PersAIProcess:
        index = len(self.workers)
        worker = PersAIProcess("worker", self.env, self.directory / f"worker{index}.log", *args)
        self.workers.append(worker)
        return worker

    def start_ready(self) -> PersAIProcess:
        """The API and one worker, once the worker has said it is alive; the API."""
        api = self.start_api()
        self.start_worker()
        wait_for_worker(api.url)
        return api

    def client(self, **kwargs: object) -> httpx.Client:
        assert self.api is not None
        return httpx.Client(base_url=self.api.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def logs(self) -> str:
        parts = [p.log() for p in ([self.api] if self.api else []) + self.workers]
        return "\n".join(parts)

    def stop(self) -> None:
        for process in [*self.workers, *([self.api] if self.api else [])]:
            process.stop()
