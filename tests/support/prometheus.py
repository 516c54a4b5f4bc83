"""A real Prometheus on a free loopback port, over a TSDB backfilled from OpenMetrics text.

    with PrometheusServer.start(tmp_path, openmetrics=incident.openmetrics()) as prometheus:
        httpx.get(f"{prometheus.url}/api/v1/query", params={"query": "up"})

The data goes through `promtool tsdb create-blocks-from openmetrics` into the TSDB directory
before Prometheus starts, so it is queryable as soon as `/-/ready` answers, however old it is
(retention is set to 100 years). Optional rule files (alerting and recording rules, YAML text)
are loaded and evaluated every second. Nothing is scraped (persai.launcher.start_prometheus).

Missing `prometheus`/`promtool` binaries skip the test, except under `CI=true`, where they fail it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from persai import launcher
from persai.launcher.servers import PROMETHEUS_HINT
from tests.support.require import require

logger = logging.getLogger(__name__)

INSTALL_HINT = PROMETHEUS_HINT


def require_binaries() -> tuple[str, str]:
    """Paths of `prometheus` and `promtool`; skips the test when missing (fails under CI=true)."""
    return require("prometheus", INSTALL_HINT), require("promtool", INSTALL_HINT)


def backfill(openmetrics: str, data_dir: Path, work_dir: Path) -> float:
    """Write `openmetrics` to a file and turn it into TSDB blocks in `data_dir`; returns seconds."""
    require_binaries()
    return launcher.backfill(openmetrics, data_dir, work_dir)


class PrometheusServer(launcher.Prometheus):
    """A running Prometheus process: `.url`, `.stop()`, usable as a context manager."""

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
        require_binaries()
        started = launcher.start_prometheus(
            work_dir,
            openmetrics=openmetrics,
            rule_files=rule_files,
            scrape_self=scrape_self,
            alertmanagers=alertmanagers,
            timeout_s=timeout_s,
        )
        server = cls(started.child, work_dir, started.backfill_s)
        server.startup_s = started.startup_s
        logger.info(
            "prometheus ready at %s: backfill %.2f s, start %.2f s",
            server.url,
            server.backfill_s,
            server.startup_s,
        )
        return server
