"""A real Prometheus on a free loopback port, over a TSDB backfilled from OpenMetrics text.

    with PrometheusServer.start(tmp_path, openmetrics=incident.openmetrics()) as prometheus:
        httpx.get(f"{prometheus.url}/api/v1/query", params={"query": "up"})

The data goes through `promtool tsdb create-blocks-from openmetrics` into the TSDB directory
before Prometheus starts, so it is queryable as soon as `/-/ready` answers, however old it is
(retention is set to 100 years). Optional rule files (alerting and recording rules, YAML text)
are loaded and evaluated every second. Nothing is scraped.

Missing `prometheus`/`promtool` binaries skip the test, except under `CI=true`, where they fail it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pytest
import yaml

from tests.support.ports import free_port

logger = logging.getLogger(__name__)

INSTALL_HINT = "install them with `apt-get install prometheus` (Debian/Ubuntu)"


def require_binaries() -> tuple[str, str]:
    """Paths of `prometheus` and `promtool`; skips the test when missing (fails under CI=true)."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus and promtool:
        return prometheus, promtool
    missing = " and ".join(
        n for n, p in (("prometheus", prometheus), ("promtool", promtool)) if not p
    )
    message = f"{missing} not found on PATH: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def backfill(openmetrics: str, data_dir: Path, work_dir: Path) -> float:
    """Write `openmetrics` to a file and turn it into TSDB blocks in `data_dir`; returns seconds."""
    promtool = require_binaries()[1]
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


class PrometheusServer:
    """A running Prometheus process: `.url`, `.stop()`, usable as a context manager."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, work_dir: Path) -> None:
        self.process = process
        self.url = url
        self.work_dir = work_dir
        self.log_path = work_dir / "prometheus.log"
        self.backfill_s = 0.0
        self.startup_s = 0.0

    @classmethod
    def start(
        cls,
        work_dir: Path,
        *,
        openmetrics: str | None = None,
        rule_files: Mapping[str, str] | None = None,
        scrape_self: bool = False,
        alertmanagers: Sequence[str] = (),
        timeout_s: float = 30.0,
    ) -> PrometheusServer:
        """Backfill `openmetrics`, write `rule_files` (name → YAML text), start and wait for ready.

        `scrape_self` makes Prometheus scrape its own metrics every second (job `prometheus`),
        which gives it metric metadata (only scraped metrics have any). `alertmanagers`
        (host:port each) receive the alerts its rules fire, sent again every second (not every
        minute): one that was still starting gets them soon after.
        `backfill_s` and `startup_s` on the result say how long each part took, in seconds.
        """
        prometheus = require_binaries()[0]
        work_dir.mkdir(parents=True, exist_ok=True)
        data_dir = work_dir / "data"
        data_dir.mkdir(exist_ok=True)
        backfill_s = backfill(openmetrics, data_dir, work_dir) if openmetrics else 0.0
        port = free_port()
        config = _write_config(
            work_dir, rule_files or {}, f"127.0.0.1:{port}" if scrape_self else None, alertmanagers
        )
        began = time.perf_counter()
        with (work_dir / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir}",
                    "--storage.tsdb.retention.time=100y",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle",
                    "--log.level=info",
                    *(["--rules.alert.resend-delay=1s"] if alertmanagers else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = cls(process, f"http://127.0.0.1:{port}", work_dir)
        server.backfill_s = backfill_s
        try:
            server._wait_ready(timeout_s)
        except BaseException:
            server.stop()
            raise
        server.startup_s = time.perf_counter() - began
        logger.info(
            "prometheus ready at %s: backfill %.2f s, start %.2f s",
            server.url,
            backfill_s,
            server.startup_s,
        )
        return server

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"prometheus exited with {self.process.returncode}" + self._tail()
                    )
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        raise TimeoutError(f"prometheus not ready after {timeout_s:.0f} s" + self._tail())

    def _tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return f"\nlast lines of {self.log_path}:\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _write_config(
    work_dir: Path,
    rule_files: Mapping[str, str],
    self_target: str | None = None,
    alertmanagers: Sequence[str] = (),
) -> Path:
    """A configuration that evaluates the given rule files every second and scrapes nothing,
    or only itself (at `self_target`) every second."""
    paths = []
    for name, text in rule_files.items():
        path = work_dir / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "1s"},
        "rule_files": paths,
        "scrape_configs": [
            {
                "job_name": "prometheus",
                "scrape_interval": "1s",
                "static_configs": [{"targets": [self_target]}],
            }
        ]
        if self_target
        else [],
    }
    if alertmanagers:
        targets = [{"targets": list(alertmanagers)}]
        config["alerting"] = {"alertmanagers": [{"static_configs": targets}]}
    target = work_dir / "prometheus.yml"
    target.write_text(yaml.safe_dump(config), encoding="utf-8")
    return target
