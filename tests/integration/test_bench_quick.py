"""The benchmarks keep working: each one's `--quick` mode runs and prints its figures.

The figures are not judged here (CI machines are small and shared); bench/README.md holds the
measured ones. A benchmark exits non-zero when what it measures went wrong (an investigation
that failed, an event a subscriber missed, a request refused), and that is a failure here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis import require_redis_server

ROOT = Path(__file__).resolve().parents[2]

FIGURES = {
    "queue_overhead": [
        r"baseline: Celery no-op round trip.*p50 [\d.]+ ms, p99 [\d.]+ ms",
        r"PersAI submit -> done \(auth on, events over SSE\): p50 [\d.]+ ms",
        r"/ baseline: p50 [\d.]+x, p99 [\d.]+x",
    ],
    "concurrency": [
        r"one investigation alone: median [\d.]+ s",
        r"each batch, ratio to one alone: [\d.]+x",
        r"ratio to one alone: [\d.]+x",
        r"succeeded: (\d+) of \1\b",
        r"worker memory: peak RSS \(VmHWM\) \d+ MiB",
    ],
    "http_client": [
        r"aiohttp, CPU ms per request: median [\d.]+",
        r"httpx / aiohttp: [\d.]+x the CPU per request",
    ],
    "auth_polling": [
        r"GET /healthz \(no auth\): \d+ req/s",
        r"Perses cookies: \d+ req/s",
        r"cookies / healthz: [\d.]+x",
        r"Perses calls: \d+ refresh \+ \d+ whoami during \d+ polls",
    ],
    "sse_fanout": [
        r"subscribers that received every event, in order, once: (\d+) of \1\b",
        r"delivery lag of the \d+ stamped answer pieces: p50 [\d.]+ ms, p99 [\d.]+ ms",
    ],
    "scale_out": [
        r"1 worker process: \d+ investigations/s",
        r"2 worker processes: \d+ investigations/s",
    ],
}


@pytest.mark.parametrize("bench", sorted(FIGURES))
def test_quick_mode_runs_and_prints_its_figures(bench: str) -> None:
    require_redis_server()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench}.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert re.search(r"^machine: \d+ cores \(.+\), Python \d", done.stdout, re.M), done.stdout
    for figure in FIGURES[bench]:
        assert re.search(figure, done.stdout), f"{figure!r} not in:\n{done.stdout}"
